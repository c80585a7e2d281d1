/**
 * `candor admin reset --email E`: for a staff member (often the only owner)
 * who lost both authenticator and recovery codes. Removes their password,
 * second factor and sessions and prints a one-time link to set them again.
 */
import { resetStaffSignIn } from '../core/auth/console-auth.ts';
import { cliAuthContext } from './auth-context.ts';
import { type CliCommand, CliError, openContext, parseOptions } from './command.ts';

export const adminReset: CliCommand = {
  name: ['admin', 'reset'],
  usage: 'admin reset --email E',
  summary: "reset a staff member's lost second factor; prints a one-time link",
  async run(args) {
    const { values, positionals } = parseOptions(args, { email: { type: 'string' } });
    if (positionals.length) throw new CliError(`unexpected argument: ${positionals.join(' ')}`, 2);
    if (!values.email) throw new CliError('--email is required', 2);
    const context = await openContext();
    try {
      const result = await resetStaffSignIn(cliAuthContext(context), null, values.email);
      if (!result.ok) throw new CliError(result.message);
      const link = new URL(`console/link/${result.token}`, context.config.publicUrl).href;
      console.log(
        `${result.member.email} was signed out everywhere; they set a new password and second factor here (valid 24 hours, once):\n${link}`,
      );
      return 0;
    } finally {
      await context.database.close();
    }
  },
};
