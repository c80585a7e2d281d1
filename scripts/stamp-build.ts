/**
 * The last step of `npm run build`: stamps dist/ with a hash of the sources it was built from, so
 * `npm start` knows the build is current (src/runtime/build.ts).
 */
import { join } from 'node:path';
import { writeBuildStamp } from '../src/runtime/build.ts';

writeBuildStamp(join(import.meta.dirname, '..'));
