/** What readConfig refuses an environment with: the ConfigError it throws (a test fails when it throws nothing). */
import { ConfigError, readConfig } from '../../src/core/config/env.ts';

export function configErrorOf(env: Record<string, string>): ConfigError {
  try {
    readConfig(env, '/srv/candor');
  } catch (err) {
    if (err instanceof ConfigError) return err;
  }
  throw new Error('expected a ConfigError');
}
