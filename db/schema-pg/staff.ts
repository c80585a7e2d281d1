import { boolean, index, integer, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { sessionMethods, staffRoles } from '../schema/staff.ts';
import { bytea, timestamptz, trustCenterId } from './trust-centers.ts';

/** db/schema/staff.ts on PostgreSQL: staff accounts, sessions, recovery codes, one-time links, rate limits. */
export const staff = pgTable(
  'staff',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    /** lower-cased */
    email: text('email').notNull().unique(),
    name: text('name'),
    role: text('role', { enum: staffRoles }).notNull(),
    status: text('status', { enum: ['invited', 'active', 'disabled'] }).notNull(),
    passwordHash: text('password_hash'),
    /** AES-256-GCM sealed with CANDOR_ENCRYPTION_KEY (see src/core/crypto) */
    totpSecret: text('totp_secret'),
    totpEnrolledAt: timestamptz('totp_enrolled_at'),
    /** the last TOTP time step accepted, so a code cannot be replayed */
    totpLastCounter: integer('totp_last_counter'),
    /** named in each recognised-device cookie (src/core/auth/devices.ts); raised to forget every device at once */
    deviceGeneration: integer('device_generation').notNull().default(0),
    /** the OpenID provider's issuer and subject linked at the first SSO sign-in (src/core/auth/sso.ts) */
    ssoIssuer: text('sso_issuer'),
    ssoSubject: text('sso_subject'),
    /** a break-glass owner: keeps password + TOTP sign-in while single sign-on is required (src/core/auth/sso-requirement.ts) */
    breakGlass: boolean('break_glass').notNull().default(false),
    createdAt: timestamptz('created_at').notNull(),
    updatedAt: timestamptz('updated_at').notNull(),
    trustCenterId: trustCenterId(),
  },
  // one account per provider identity
  (t) => [uniqueIndex('staff_sso_identity').on(t.ssoIssuer, t.ssoSubject)],
);

export const staffSessions = pgTable(
  'staff_sessions',
  {
    id: text('id').primaryKey(),
    staffId: integer('staff_id')
      .notNull()
      .references(() => staff.id, { onDelete: 'cascade' }),
    secretHash: bytea('secret_hash').notNull(),
    createdAt: timestamptz('created_at').notNull(),
    lastActiveAt: timestamptz('last_active_at').notNull(),
    /** absolute end of life */
    expiresAt: timestamptz('expires_at').notNull(),
    /** set once the second factor was given in this session */
    mfaVerifiedAt: timestamptz('mfa_verified_at'),
    /** how the session was opened: password (and TOTP), or single sign-on */
    method: text('method', { enum: sessionMethods }).notNull().default('password'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('staff_sessions_staff').on(t.staffId)],
);

export const recoveryCodes = pgTable(
  'recovery_codes',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    staffId: integer('staff_id')
      .notNull()
      .references(() => staff.id, { onDelete: 'cascade' }),
    codeHash: text('code_hash').notNull(),
    usedAt: timestamptz('used_at'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('recovery_codes_staff').on(t.staffId)],
);

export const staffLinks = pgTable('staff_links', {
  id: text('id').primaryKey(),
  staffId: integer('staff_id')
    .notNull()
    .references(() => staff.id, { onDelete: 'cascade' }),
  purpose: text('purpose', { enum: ['setup', 'invite', 'reset'] }).notNull(),
  secretHash: bytea('secret_hash').notNull(),
  createdBy: integer('created_by'),
  createdAt: timestamptz('created_at').notNull(),
  expiresAt: timestamptz('expires_at').notNull(),
  usedAt: timestamptz('used_at'),
  trustCenterId: trustCenterId(),
});

/** Console settings kept by staff (src/stores/console-settings.ts): one row per setting and trust center, the value as JSON text. */
export const consoleSettings = pgTable(
  'console_settings',
  {
    key: text('key').notNull(),
    value: text('value').notNull(),
    updatedAt: timestamptz('updated_at').notNull(),
    updatedBy: integer('updated_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [primaryKey({ columns: [t.trustCenterId, t.key] })],
);

export const rateLimits = pgTable(
  'rate_limits',
  {
    bucket: text('bucket').notNull(),
    key: text('key').notNull(),
    windowStart: timestamptz('window_start').notNull(),
    count: integer('count').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [primaryKey({ columns: [t.bucket, t.key] })],
);
