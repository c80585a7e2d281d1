import { blob, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { trustCenterId } from './trust-centers.ts';

export const staffRoles = ['owner', 'admin', 'responder', 'viewer'] as const;
export const sessionMethods = ['password', 'sso'] as const;

export const staff = sqliteTable(
  'staff',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    /** lower-cased */
    email: text('email').notNull().unique(),
    name: text('name'),
    role: text('role', { enum: staffRoles }).notNull(),
    status: text('status', { enum: ['invited', 'active', 'disabled'] }).notNull(),
    passwordHash: text('password_hash'),
    /** AES-256-GCM sealed with CANDOR_ENCRYPTION_KEY (see src/core/crypto) */
    totpSecret: text('totp_secret'),
    totpEnrolledAt: integer('totp_enrolled_at', { mode: 'timestamp_ms' }),
    /** the last TOTP time step accepted, so a code cannot be replayed */
    totpLastCounter: integer('totp_last_counter'),
    /**
     * Named in each recognised-device cookie (src/core/auth/devices.ts); raised to forget every device
     * at once: an owner's sign-in reset, disabling, a password change, ending the other sessions.
     */
    deviceGeneration: integer('device_generation').notNull().default(0),
    /**
     * Single sign-on (src/core/auth/sso.ts): the OpenID provider's issuer and subject (`sub`) linked
     * at the first SSO sign-in by verified email, checked at every later one; null until then.
     */
    ssoIssuer: text('sso_issuer'),
    ssoSubject: text('sso_subject'),
    /**
     * A break-glass owner (src/core/auth/sso-requirement.ts): keeps password + TOTP sign-in while single
     * sign-on is required, for when the provider is down; each such sign-in is announced to every owner.
     * Counts only while the account is an owner.
     */
    breakGlass: integer('break_glass', { mode: 'boolean' }).notNull().default(false),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
    trustCenterId: trustCenterId(),
  },
  // one account per provider identity
  (t) => [uniqueIndex('staff_sso_identity').on(t.ssoIssuer, t.ssoSubject)],
);

/** Sessions after Lucia's design: the token is `id.secret`; only SHA-256(secret) is stored. */
export const staffSessions = sqliteTable(
  'staff_sessions',
  {
    id: text('id').primaryKey(),
    staffId: integer('staff_id')
      .notNull()
      .references(() => staff.id, { onDelete: 'cascade' }),
    secretHash: blob('secret_hash', { mode: 'buffer' }).notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    lastActiveAt: integer('last_active_at', { mode: 'timestamp_ms' }).notNull(),
    /** absolute end of life */
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    /** set once the second factor was given in this session */
    mfaVerifiedAt: integer('mfa_verified_at', { mode: 'timestamp_ms' }),
    /** how the session was opened: password (and TOTP), or single sign-on, whose provider gave the second factor */
    method: text('method', { enum: sessionMethods }).notNull().default('password'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('staff_sessions_staff').on(t.staffId)],
);

export const recoveryCodes = sqliteTable(
  'recovery_codes',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    staffId: integer('staff_id')
      .notNull()
      .references(() => staff.id, { onDelete: 'cascade' }),
    codeHash: text('code_hash').notNull(),
    usedAt: integer('used_at', { mode: 'timestamp_ms' }),
    trustCenterId: trustCenterId(),
  },
  (t) => [index('recovery_codes_staff').on(t.staffId)],
);

/** One-time links: first-owner setup, invitations, password resets. Only SHA-256 of the secret is kept. */
export const staffLinks = sqliteTable('staff_links', {
  id: text('id').primaryKey(),
  staffId: integer('staff_id')
    .notNull()
    .references(() => staff.id, { onDelete: 'cascade' }),
  purpose: text('purpose', { enum: ['setup', 'invite', 'reset'] }).notNull(),
  secretHash: blob('secret_hash', { mode: 'buffer' }).notNull(),
  createdBy: integer('created_by'),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
  usedAt: integer('used_at', { mode: 'timestamp_ms' }),
  trustCenterId: trustCenterId(),
});

/**
 * Console settings kept by staff (src/stores/console-settings.ts): one row per setting and trust
 * center, its value as JSON text, and who changed it last. Today: whether single sign-on is required.
 */
export const consoleSettings = sqliteTable(
  'console_settings',
  {
    key: text('key').notNull(),
    /** JSON */
    value: text('value').notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
    /** the staff member who changed it last (no foreign key: the audit log says who, whatever happens to the account) */
    updatedBy: integer('updated_by'),
    trustCenterId: trustCenterId(),
  },
  (t) => [primaryKey({ columns: [t.trustCenterId, t.key] })],
);

/** Fixed-window counters for rate limits, in the database so a restart does not reset them. */
export const rateLimits = sqliteTable(
  'rate_limits',
  {
    bucket: text('bucket').notNull(),
    key: text('key').notNull(),
    windowStart: integer('window_start', { mode: 'timestamp_ms' }).notNull(),
    count: integer('count').notNull(),
    trustCenterId: trustCenterId(),
  },
  (t) => [primaryKey({ columns: [t.bucket, t.key] })],
);
