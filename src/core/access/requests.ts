/**
 * Visitors asking for gated documents, and the decision that follows. A request is made `unverified`
 * with a `verify` link emailed (the form answers the same whether or not the address is known); the
 * link's button (a POST) proves the address and, in the same transaction, the rules decide
 * (src/core/access/rules.ts): approve writes a grant and emails a `sign_in` link, review tells the
 * reviewers on the staff channel, refuse emails the neutral refusal. Reviewers approve or refuse a
 * pending request from the console; the status moves by one conditional UPDATE, so of two decisions at
 * once one wins. Everything is audited; the audit holds the domain, never the address.
 */
import type { Database, Reader, Tx } from '../../../db/engine/types.ts';
import {
  type AccessGrantRow,
  type AccessRequestRow,
  type AccessRuleRow,
  accessRequestById,
  accessRequestWithAddress,
  accessRuleById,
  accessRuleRows,
  changeRequestStatus,
  deleteAccessRule,
  grantsOfRequest,
  insertAccessGrant,
  insertAccessRequest,
  upsertAccessRule,
} from '../../stores/access-requests.ts';
import { staffById } from '../../stores/staff.ts';
import { type AuditActor, writeAudit } from '../audit/log.ts';
import { sourceOf } from '../auth/lockouts.ts';
import { hitLimitNow, type Limit } from '../auth/rate-limit.ts';
import { staffLabel } from '../auth/staff.ts';
import { enqueueNotification } from '../notify/outbox.ts';
import { addressHash, ensureRecipient, type Keys, openRecipient } from '../notify/recipients.ts';
import { notifyStaff, type StaffChannels } from '../notify/staff-recipients.ts';
import { checkEmail } from '../subscriptions/addresses.ts';
import { escapeHtml } from '../text/escape.ts';
import { checkReaderLink, consumeReaderLink, issueReaderLink, type ReaderLinkCheck } from './reader-links.ts';
import {
  type AccessDecision,
  DEFAULT_GRANT_DAYS,
  decideForDomain,
  grantExpiry,
  grantedDocuments,
  isFreeMailDomain,
  MAX_GRANT_DAYS,
  normaliseDomain,
  normalisePattern,
} from './rules.ts';

const HOUR = 3_600_000;
const DAY = 86_400_000;

export const accessRequestLimits = {
  perIp: { bucket: 'access-request:ip', max: 10, windowMs: HOUR },
  perAddress: { bucket: 'access-request:address', max: 3, windowMs: HOUR },
  verifyPerIp: { bucket: 'access-verify:ip', max: 30, windowMs: HOUR },
} as const satisfies Record<string, Limit>;

export const REQUEST_ANSWER =
  'Thank you. Check your inbox: if this address can receive our emails, a message is on its way. Open it and press the button on the page to confirm your request. The link works for 24 hours.';
/** What a requester is told when refused, by a rule or by default: it names no domain and no rule. */
export const NEUTRAL_REFUSAL =
  'Thank you for your interest. We are not able to share these documents with you at this time. If you think this is a mistake, reply to your contact at our company.';
export const ANSWER_LATER = 'Thank you: your email address is confirmed. We will email you the answer.';
export const APPROVED_ANSWER = 'Your request is approved: we emailed you a sign-in link.';

export type Result<T extends object = object> = ({ ok: true } & T) | { ok: false; message: string; status?: number };

export interface GatedDocument {
  slug: string;
  title: string;
}

/** What the access flows need from the running app. */
export interface AccessContext {
  database: Database;
  keys: Keys;
  now: Date;
  publicUrl: URL;
  organisation: string;
  /** the gated documents (content/documents with `access: nda`) */
  gated: readonly GatedDocument[];
  staff: StaffChannels;
  ip: string | null;
  userAgent: string | null;
}

export interface StaffActor {
  id: number;
  label: string;
}

export interface RequestInput {
  documents: string[];
  name: string;
  email: string;
  company: string;
  reason: string;
}

const titleOf = (ctx: Pick<AccessContext, 'gated'>, slug: string) => ctx.gated.find((d) => d.slug === slug)?.title ?? slug;
const titles = (ctx: Pick<AccessContext, 'gated'>, slugs: readonly string[]) => slugs.map((s) => titleOf(ctx, s));
const day = (d: Date) => d.toISOString().slice(0, 10);

function audit(
  tx: Tx,
  ctx: AccessContext,
  actor: AuditActor,
  action: Parameters<typeof writeAudit>[1]['action'],
  target: string,
  summary: Record<string, unknown>,
) {
  return writeAudit(tx, { actor, ip: ctx.ip, userAgent: ctx.userAgent, action, target, summary }, ctx.now);
}

/** Checks the documents asked for: at least one, each a gated document; the distinct slugs or a message. */
function checkDocuments(ctx: AccessContext, documents: readonly string[]): { ok: true; slugs: string[] } | { ok: false; message: string } {
  const slugs = [...new Set(documents.map((d) => d.trim()).filter((d) => d !== ''))];
  if (slugs.length === 0) return { ok: false, message: 'Documents: choose at least one document.' };
  const unknown = slugs.find((s) => !ctx.gated.some((d) => d.slug === s));
  if (unknown !== undefined) return { ok: false, message: `Documents: there is no document "${unknown.slice(0, 60)}" to ask for.` };
  return { ok: true, slugs };
}

function checkText(label: string, value: string, max: number, what: string): { ok: true; value: string } | { ok: false; message: string } {
  const v = value.trim();
  if (v === '') return { ok: false, message: `${label}: enter ${what}.` };
  if (v.length > max) return { ok: false, message: `${label}: too long (${max.toLocaleString('en-GB')} characters at most).` };
  return { ok: true, value: v };
}

/** Counts an attempt against `limit`; whether it is over. */
async function limited(ctx: AccessContext, limit: Limit, key: string): Promise<boolean> {
  return (await hitLimitNow(ctx.database, limit, key, ctx.now)).limited;
}

/** A message to one requester, in the caller's transaction (the address may be an unconfirmed subscriber's). */
async function emailRequester(
  tx: Tx,
  now: Date,
  recipientId: number,
  kind: string,
  subject: string,
  paragraphs: string[],
  link?: { url: string; label: string },
) {
  const html = [
    ...paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`),
    ...(link ? [`<p><a href="${escapeHtml(link.url)}">${escapeHtml(link.label)}</a></p>`] : []),
  ].join('\n');
  const text = `${paragraphs.join('\n\n')}${link ? `\n\n${link.label}: ${link.url}` : ''}\n`;
  await enqueueNotification(
    tx,
    {
      kind,
      title: subject,
      content: { email: { subject, html, text } },
      audience: { kind: 'recipients', ids: [recipientId], includePending: true },
    },
    now,
  );
}

/**
 * The request form: validates each field (a message naming it), limits per source and per address,
 * and answers the same whether or not the address is known or was limited.
 */
export async function requestAccess(ctx: AccessContext, input: RequestInput): Promise<Result<{ message: string }>> {
  const docs = checkDocuments(ctx, input.documents);
  if (!docs.ok) return docs;
  const name = checkText('Name', input.name, 200, 'your name');
  if (!name.ok) return name;
  const email = checkEmail(input.email);
  if (!email.ok) return { ok: false, message: `Work email: ${email.message}` };
  const domain = normaliseDomain(email.value.slice(email.value.lastIndexOf('@') + 1));
  if (!domain.ok) return { ok: false, message: `Work email: the part after @ is not a domain we can read. ${domain.message}` };
  const company = checkText('Company', input.company, 200, 'the company you work for');
  if (!company.ok) return company;
  const reason = checkText('Reason', input.reason, 2000, 'why you need these documents');
  if (!reason.ok) return reason;
  if (await limited(ctx, accessRequestLimits.perIp, sourceOf(ctx.ip)))
    return { ok: false, message: 'Too many requests from your network. Try again in an hour.', status: 429 };
  // Per address, silently: a visible refusal would tell that the address was tried before.
  if (await limited(ctx, accessRequestLimits.perAddress, addressHash(ctx.keys, 'email', email.value)))
    return { ok: true, message: REQUEST_ANSWER };
  await ctx.database.transaction(async (tx) => {
    const recipient = await ensureRecipient(tx, ctx.keys, { channel: 'email', address: email.value }, ctx.now);
    if (recipient.status === 'suppressed' || recipient.status === 'removed') return;
    const id = await insertAccessRequest(tx, {
      recipientId: recipient.id,
      domain: domain.domain,
      name: name.value,
      company: company.value,
      reason: reason.value,
      documents: docs.slugs,
      createdAt: ctx.now,
    });
    const token = await issueReaderLink(tx, recipient.id, 'verify', id, ctx.now);
    const url = new URL(`documents/verify/${token}`, ctx.publicUrl).href;
    await emailRequester(
      tx,
      ctx.now,
      recipient.id,
      'access-verify',
      `Confirm your request for ${ctx.organisation} documents`,
      [
        `Someone, we hope you, asked for these documents of ${ctx.organisation}: ${titles(ctx, docs.slugs).join(', ')}.`,
        'Open the link below and press the button on the page to confirm your request. The link works for 24 hours.',
        'If you did not ask for them, ignore this email: nothing happens without the button.',
      ],
      { url, label: 'Confirm my request' },
    );
    await audit(tx, ctx, { type: 'anonymous' }, 'access.request.created', `access-request:${id}`, {
      domain: domain.domain,
      documents: docs.slugs,
    });
  });
  return { ok: true, message: REQUEST_ANSWER };
}

const linkMessages: Record<Exclude<ReaderLinkCheck, { ok: true }>['reason'], string> = {
  invalid: 'This confirmation link is not valid. Ask for the documents again to get a new one.',
  used: 'This confirmation link was already used. We will email you the answer to your request.',
  expired: 'This confirmation link has expired (links work for 24 hours). Ask for the documents again to get a new one.',
};

export interface VerifySummary {
  name: string;
  company: string;
  documents: string[];
  createdAt: Date;
}

/** What the verify page shows before the button: consumes nothing. */
export async function verifyPage(
  ctx: Pick<AccessContext, 'database' | 'now' | 'gated'>,
  token: string,
): Promise<Result<{ summary: VerifySummary }>> {
  return ctx.database.read(async (r: Reader) => {
    const check = await checkReaderLink(r, token, 'verify', ctx.now);
    if (!check.ok) return { ok: false, message: linkMessages[check.reason], status: check.reason === 'invalid' ? 404 : 410 };
    const request = check.link.requestId ? await accessRequestById(r, check.link.requestId) : undefined;
    if (request?.status !== 'unverified') return { ok: false, message: linkMessages.used, status: 410 };
    return {
      ok: true,
      summary: { name: request.name, company: request.company, documents: titles(ctx, request.documents), createdAt: request.createdAt },
    };
  });
}

/** The staff message of a request that waits for review (the reminder sends one like it). */
export function reviewMessage(ctx: Pick<AccessContext, 'publicUrl' | 'gated'>, request: AccessRequestRow, reminder: boolean) {
  const url = new URL(`console/access/requests/${request.id}`, ctx.publicUrl).href;
  const free = isFreeMailDomain(request.domain) ? ' (a free-mail domain)' : '';
  const subject = `${reminder ? 'Still waiting: ' : ''}Access request from ${request.company.slice(0, 80)}`;
  const text = `${reminder ? 'Still waiting for a decision: ' : ''}${request.name.slice(0, 100)} of ${request.company.slice(0, 100)} (${request.domain}${free}) asks for ${titles(ctx, request.documents).join(', ')}. Approve or refuse it: ${url}`;
  return { kind: reminder ? 'staff-access-reminder' : 'staff-access-request', subject, text };
}

/** The grant, its sign-in link and email: one approval, in the caller's transaction. */
async function grantAndTell(
  tx: Tx,
  ctx: AccessContext,
  request: AccessRequestRow,
  documents: string[],
  expiresAt: Date,
  createdBy: number | null,
): Promise<number> {
  const grantId = await insertAccessGrant(tx, {
    requestId: request.id,
    recipientId: request.recipientId,
    name: request.name,
    company: request.company,
    documents,
    createdAt: ctx.now,
    createdBy,
    expiresAt,
  });
  const token = await issueReaderLink(tx, request.recipientId, 'sign_in', request.id, ctx.now);
  const url = new URL(`documents/sign-in/${token}`, ctx.publicUrl).href;
  await emailRequester(
    tx,
    ctx.now,
    request.recipientId,
    'access-approved',
    `Your access to ${ctx.organisation} documents`,
    [
      `Your request is approved. You may read ${titles(ctx, documents).join(', ')} until ${day(expiresAt)}.`,
      'Sign in with the link below and press the button on the page. The link works for 30 minutes; after that, ask for a new one on the sign-in page.',
    ],
    { url, label: 'Sign in to read the documents' },
  );
  return grantId;
}

async function tellRefused(tx: Tx, ctx: AccessContext, recipientId: number, message: string) {
  await emailRequester(
    tx,
    ctx.now,
    recipientId,
    'access-refused',
    `Your request for ${ctx.organisation} documents`,
    message.split(/\n{2,}/),
  );
}

/**
 * The button's press: consumes the link and, in the same transaction, marks the request verified and
 * lets the rules decide. The answer for review and refusal is the same.
 */
export async function verifyAccessRequest(ctx: AccessContext, token: string): Promise<Result<{ approved: boolean; message: string }>> {
  if (await limited(ctx, accessRequestLimits.verifyPerIp, sourceOf(ctx.ip)))
    return { ok: false, message: 'Too many attempts from your network. Try again in an hour.', status: 429 };
  return ctx.database.transaction(async (tx): Promise<Result<{ approved: boolean; message: string }>> => {
    const check = await consumeReaderLink(tx, token, 'verify', ctx.now);
    if (!check.ok) return { ok: false, message: linkMessages[check.reason], status: check.reason === 'invalid' ? 404 : 410 };
    const request = check.link.requestId ? await accessRequestById(tx, check.link.requestId) : undefined;
    if (request?.status !== 'unverified') return { ok: false, message: linkMessages.used, status: 410 };
    const rules = await accessRuleRows(tx);
    const chosen = decideForDomain(request.domain, rules);
    const rule: AccessRuleRow | null = chosen.rule;
    const target = `access-request:${request.id}`;
    let decision: AccessDecision = chosen.decision;
    const documents =
      rule && decision === 'approve' ? grantedDocuments(rule, request.documents).filter((d) => ctx.gated.some((g) => g.slug === d)) : [];
    // An approving rule that gives none of the documents asked for decides nothing: a person does.
    if (decision === 'approve' && documents.length === 0) decision = 'review';
    const byRule =
      rule && decision === chosen.decision
        ? { decidedVia: 'rule' as const, ruleId: rule.id, rulePattern: rule.pattern, decidedAt: ctx.now }
        : {};
    const status = decision === 'approve' ? 'approved' : decision === 'refuse' ? 'refused' : 'pending';
    const moved = await changeRequestStatus(tx, request.id, 'unverified', {
      status,
      verifiedAt: ctx.now,
      ...(decision === 'review' ? {} : byRule),
      ...(decision === 'refuse' ? { refusalMessage: NEUTRAL_REFUSAL } : {}),
    });
    if (!moved) return { ok: false, message: linkMessages.used, status: 410 };
    await audit(tx, ctx, { type: 'anonymous' }, 'access.request.verified', target, {
      domain: request.domain,
      decision,
      rule: rule?.pattern ?? null,
    });
    if (decision === 'approve' && rule) {
      const expiresAt = grantExpiry(ctx.now, rule.grantDays);
      const grantId = await grantAndTell(tx, ctx, request, documents, expiresAt, null);
      await audit(tx, ctx, { type: 'system' }, 'access.request.approved', target, {
        via: 'rule',
        rule: rule.pattern,
        grant: grantId,
        documents,
        expires: day(expiresAt),
      });
      return { ok: true, approved: true, message: APPROVED_ANSWER };
    }
    if (decision === 'refuse' && rule) {
      await tellRefused(tx, ctx, request.recipientId, NEUTRAL_REFUSAL);
      await audit(tx, ctx, { type: 'system' }, 'access.request.refused', target, { via: 'rule', rule: rule.pattern });
      return { ok: true, approved: false, message: ANSWER_LATER };
    }
    await notifyStaff(tx, ctx.staff, reviewMessage(ctx, request, false), ctx.now);
    return { ok: true, approved: false, message: ANSWER_LATER };
  });
}

// --- the console ---

export interface RequestDetail {
  request: AccessRequestRow;
  /** opened for display */
  email: string;
  freeMail: boolean;
  decidedBy: string | null;
  grants: AccessGrantRow[];
}

export async function requestDetail(database: Database, keys: Keys, id: number): Promise<RequestDetail | null> {
  return database.read(async (r) => {
    const found = await accessRequestWithAddress(r, id);
    if (!found) return null;
    let email: string;
    try {
      email = openRecipient(keys, found.recipient).address;
    } catch {
      email = '(sealed under a key this server lacks)';
    }
    const decider = found.request.decidedBy ? await staffById(r, found.request.decidedBy) : undefined;
    return {
      request: found.request,
      email,
      freeMail: isFreeMailDomain(found.request.domain),
      decidedBy: decider ? staffLabel(decider) : found.request.decidedBy ? 'former staff' : null,
      grants: await grantsOfRequest(r, id),
    };
  });
}

const statusWords: Record<AccessRequestRow['status'], string> = {
  unverified: 'not confirmed by the requester yet',
  pending: 'pending',
  approved: 'approved',
  refused: 'refused',
};

/** Why a decision cannot be made on this request now. */
async function notDecidable(tx: Tx, id: number): Promise<string> {
  const now = await accessRequestById(tx, id);
  if (!now) return 'There is no such request.';
  return now.status === 'unverified'
    ? 'This request cannot be decided yet: the requester has not confirmed their email address.'
    : `This request was already decided: it is ${statusWords[now.status]}. Nothing was changed.`;
}

/** The latest expiry a reviewer may give, from today. */
export const MAX_GRANT_MS = MAX_GRANT_DAYS * DAY;

/** A reviewer approves a pending request: the grant and the sign-in email, or a message (already decided: one wins). */
export async function approveAccessRequest(
  ctx: AccessContext,
  actor: StaffActor,
  id: number,
  input: { documents: string[]; expires: string },
): Promise<Result<{ grantId: number }>> {
  const docs = checkDocuments(ctx, input.documents);
  if (!docs.ok) return docs;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(input.expires.trim())) return { ok: false, message: 'Expiry date: enter a date as YYYY-MM-DD.' };
  const expiresAt = new Date(`${input.expires.trim()}T23:59:59.999Z`);
  if (Number.isNaN(expiresAt.getTime())) return { ok: false, message: 'Expiry date: that is not a date.' };
  if (expiresAt.getTime() <= ctx.now.getTime()) return { ok: false, message: 'Expiry date: choose a day after today.' };
  if (expiresAt.getTime() > ctx.now.getTime() + MAX_GRANT_MS + DAY)
    return { ok: false, message: 'Expiry date: access is given for 2 years at most.' };
  return ctx.database.transaction(async (tx): Promise<Result<{ grantId: number }>> => {
    const request = await accessRequestById(tx, id);
    if (!request) return { ok: false, message: 'There is no such request.', status: 404 };
    const moved = await changeRequestStatus(tx, id, 'pending', {
      status: 'approved',
      decidedVia: 'staff',
      decidedBy: actor.id,
      decidedAt: ctx.now,
    });
    if (!moved) return { ok: false, message: await notDecidable(tx, id), status: 409 };
    const grantId = await grantAndTell(tx, ctx, request, docs.slugs, expiresAt, actor.id);
    await audit(tx, ctx, { type: 'staff', id: actor.id, label: actor.label }, 'access.request.approved', `access-request:${id}`, {
      via: 'staff',
      grant: grantId,
      documents: docs.slugs,
      expires: day(expiresAt),
    });
    return { ok: true, grantId };
  });
}

/** A reviewer refuses a pending request with a message the requester is emailed. */
export async function refuseAccessRequest(ctx: AccessContext, actor: StaffActor, id: number, rawMessage: string): Promise<Result> {
  const message = checkText('Message', rawMessage, 2000, 'the message the requester is sent');
  if (!message.ok) return message;
  return ctx.database.transaction(async (tx): Promise<Result> => {
    const request = await accessRequestById(tx, id);
    if (!request) return { ok: false, message: 'There is no such request.', status: 404 };
    const moved = await changeRequestStatus(tx, id, 'pending', {
      status: 'refused',
      decidedVia: 'staff',
      decidedBy: actor.id,
      decidedAt: ctx.now,
      refusalMessage: message.value,
    });
    if (!moved) return { ok: false, message: await notDecidable(tx, id), status: 409 };
    await tellRefused(tx, ctx, request.recipientId, message.value);
    // the message's length, not its words: reviewers may quote the requester
    await audit(tx, ctx, { type: 'staff', id: actor.id, label: actor.label }, 'access.request.refused', `access-request:${id}`, {
      via: 'staff',
      neutral: message.value === NEUTRAL_REFUSAL,
      characters: message.value.length,
    });
    return { ok: true };
  });
}

// --- rules ---

export interface RuleInput {
  id: number | null;
  pattern: string;
  decision: string;
  documents: string[];
  grantDays: string;
}

const ruleSummary = (r: Pick<AccessRuleRow, 'pattern' | 'decision' | 'documents' | 'grantDays'>) => ({
  pattern: r.pattern,
  decision: r.decision,
  documents: r.documents,
  grantDays: r.grantDays,
});

/** Adds or changes a rule (audited with before and after), or a message naming the field. */
export async function saveAccessRule(ctx: AccessContext, actor: StaffActor, input: RuleInput): Promise<Result<{ pattern: string }>> {
  const pattern = normalisePattern(input.pattern);
  if (!pattern.ok) return { ok: false, message: `Pattern: ${pattern.message}` };
  const decision = input.decision;
  if (decision !== 'approve' && decision !== 'review' && decision !== 'refuse')
    return { ok: false, message: 'Decision: choose approve, review or refuse.' };
  let documents: string[] | null = null;
  let grantDays: number | null = null;
  if (decision === 'approve') {
    const chosen = [...new Set(input.documents)];
    const unknown = chosen.find((s) => !ctx.gated.some((d) => d.slug === s));
    if (unknown !== undefined) return { ok: false, message: `Documents: there is no gated document "${unknown.slice(0, 60)}".` };
    documents = chosen.length === 0 ? null : chosen;
    const days = input.grantDays.trim();
    if (days !== '') {
      if (!/^\d{1,4}$/.test(days) || Number(days) < 1 || Number(days) > MAX_GRANT_DAYS)
        return { ok: false, message: `Days: a whole number from 1 to ${MAX_GRANT_DAYS} (empty: ${DEFAULT_GRANT_DAYS}).` };
      grantDays = Number(days);
    }
  }
  return ctx.database.transaction(async (tx): Promise<Result<{ pattern: string }>> => {
    const saved = await upsertAccessRule(tx, { pattern: pattern.pattern, decision, documents, grantDays }, actor.id, ctx.now, input.id);
    if ('missing' in saved) return { ok: false, message: 'That rule was removed meanwhile.', status: 404 };
    if ('clash' in saved)
      return { ok: false, message: `Pattern: another rule already has ${pattern.pattern}; change that one instead.`, status: 409 };
    await audit(tx, ctx, { type: 'staff', id: actor.id, label: actor.label }, 'access.rule.saved', `access-rule:${saved.after.id}`, {
      before: saved.before ? ruleSummary(saved.before) : null,
      after: ruleSummary(saved.after),
    });
    return { ok: true, pattern: pattern.pattern };
  });
}

export async function removeAccessRule(ctx: AccessContext, actor: StaffActor, id: number): Promise<Result<{ pattern: string }>> {
  return ctx.database.transaction(async (tx): Promise<Result<{ pattern: string }>> => {
    const removed = await deleteAccessRule(tx, id);
    if (!removed) return { ok: false, message: 'There is no such rule (removed meanwhile?).', status: 404 };
    await audit(tx, ctx, { type: 'staff', id: actor.id, label: actor.label }, 'access.rule.removed', `access-rule:${id}`, {
      before: ruleSummary(removed),
    });
    return { ok: true, pattern: removed.pattern };
  });
}

export function listAccessRules(database: Database): Promise<AccessRuleRow[]> {
  return database.read((r) => accessRuleRows(r));
}

export function accessRule(database: Database, id: number): Promise<AccessRuleRow | undefined> {
  return database.read((r) => accessRuleById(r, id));
}
