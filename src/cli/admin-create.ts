/**
 * `candor admin create --email E --role owner`: creates a staff account (the
 * first owner, typically) and prints a one-time link, valid 24 hours, to set
 * the password and enrol a second factor.
 */
import { inviteStaff } from '../core/auth/console-auth.ts';
import { type Role, rolePermissions } from '../core/auth/permissions.ts';
import { cliAuthContext } from './auth-context.ts';
import { type CliCommand, CliError, openContext, parseOptions } from './command.ts';

const roles = Object.keys(rolePermissions) as Role[];
const isRole = (value: string): value is Role => (roles as string[]).includes(value);

export const adminCreate: CliCommand = {
  name: ['admin', 'create'],
  usage: 'admin create --email E --role owner|admin|responder|viewer',
  summary: 'create a staff account; prints a one-time set-up link',
  async run(args) {
    const { values, positionals } = parseOptions(args, { email: { type: 'string' }, role: { type: 'string' } });
    if (positionals.length) throw new CliError(`unexpected argument: ${positionals.join(' ')}`, 2);
    if (!values.email) throw new CliError('--email is required', 2);
    const role = values.role ?? 'owner';
    if (!isRole(role)) throw new CliError(`--role must be one of ${roles.join(', ')}`, 2);
    const context = await openContext();
    try {
      const result = await inviteStaff(cliAuthContext(context), null, values.email, role);
      if (!result.ok) throw new CliError(result.message);
      const link = new URL(`console/link/${result.token}`, context.config.publicUrl).href;
      console.log(`${result.member.email} can now set a password (valid 24 hours, once):\n${link}`);
      return 0;
    } finally {
      await context.database.close();
    }
  },
};
