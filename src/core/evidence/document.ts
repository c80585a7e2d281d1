/**
 * The signed evidence document and its verification, with no database: what a third party runs with
 * the published key.
 *
 * The document is `{ format, header, entries, manifest, signature }`. The manifest holds a SHA-256 of
 * each header field and, per entry, of the entry and of each of its fields (one level into objects:
 * `content.subject`, `notice.phase`), all over canonical JSON (src/core/audit/canonical.ts). The
 * Ed25519 signature covers `{ format, header, manifest }` in canonical JSON, not the entries
 * themselves: an entry is bound to the signature through its hashes. So a verifier can say which
 * entry and which field no longer match what was signed ("entry 3 (sms to +44…, breach notice 2 of
 * incident 12): field `acceptedAt` changed") instead of only "bad signature"; a change to the header
 * or the manifest breaks the signature, and the header's own hashes name the header field.
 */
import { createHash, sign as edSign, verify as edVerify } from 'node:crypto';
import { canonicalJson } from '../audit/canonical.ts';
import type { EvidenceKey, EvidencePublicKey } from './key.ts';

export const EVIDENCE_FORMAT = 'candor-evidence/1';

export type NoticeKind =
  | 'incident-update'
  | 'breach-notice'
  | 'maintenance'
  | 'change-notice'
  | 'announcement'
  | 'postmortem'
  | 'objection-acknowledgement'
  | 'other';

export interface EvidenceNotice {
  kind: NoticeKind;
  /** the notification's title, as staff saw it */
  title: string;
  incidentId?: number;
  /** the published update this notice carried (absent for reminders and corrections) */
  updateId?: number;
  /** breach notices: their place among the breach's notices, from 1 (GDPR Art. 33(4)) */
  phase?: number;
  noticeId?: number;
  /** change notices: UTC days, YYYY-MM-DD */
  effectiveOn?: string | null;
  objectionDeadline?: string | null;
  announcementId?: number;
}

export interface EvidenceEntry {
  /** from 1, in the document's order */
  n: number;
  notificationId: number;
  deliveryId: number;
  notice: EvidenceNotice;
  channel: string;
  /** the address, opened; null when the address was since erased */
  address: string | null;
  /** the delivery's state at export */
  status: string;
  /** when the notification was published (created), ISO 8601 */
  publishedAt: string;
  /** when the provider accepted it: the first `sent` attempt (a send, or a reconcile that found it sent) */
  acceptedAt: string | null;
  acceptedBy: 'send' | 'reconcile' | null;
  /** when the provider reported it delivered (its callback), if it did */
  deliveredAt: string | null;
  providerMessageId: string | null;
  /** the notification's stored content for this channel (per-recipient links not filled in) */
  content: unknown;
  /** the audit entry that recorded the publication, when one is found */
  audit: { id: number; hash: string; action: string } | null;
}

export interface EvidenceHeader {
  issuer: { organisation: string; publicUrl: string };
  scope: { type: 'organisation' | 'subscriber' | 'address' | 'incident' | 'notice'; id: string; label: string };
  period: { from: string | null; to: string | null };
  generatedAt: string;
  /** the audit log's newest entry when the document was made (id and MAC), null when the log is empty */
  auditHead: { id: number; hash: string } | null;
  notices: number;
  /** how content was rendered: what a reader should know about links */
  contentNote: string;
  keyId: string;
}

export interface EvidenceManifest {
  header: Record<string, string>;
  entries: { hash: string; fields: Record<string, string> }[];
}

export interface EvidenceDocument {
  format: string;
  header: EvidenceHeader;
  entries: EvidenceEntry[];
  manifest: EvidenceManifest;
  signature: { algorithm: 'Ed25519'; keyId: string; value: string };
}

const sha256 = (value: unknown) => createHash('sha256').update(canonicalJson(value)).digest('hex');

/** Hashes of each field, one level into object-valued fields (`content.subject`). */
export function fieldHashes(value: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, field] of Object.entries(value)) {
    if (field === undefined) continue;
    if (field !== null && typeof field === 'object' && !Array.isArray(field)) {
      const inner = Object.entries(field as Record<string, unknown>).filter(([, v]) => v !== undefined);
      if (inner.length === 0) out[key] = sha256(field);
      for (const [sub, v] of inner) out[`${key}.${sub}`] = sha256(v);
    } else out[key] = sha256(field);
  }
  return out;
}

export function manifestOf(header: EvidenceHeader, entries: readonly EvidenceEntry[]): EvidenceManifest {
  return {
    header: fieldHashes(header as unknown as Record<string, unknown>),
    entries: entries.map((e) => ({ hash: sha256(e), fields: fieldHashes(e as unknown as Record<string, unknown>) })),
  };
}

const signedBytes = (format: string, header: unknown, manifest: unknown) =>
  Buffer.from(canonicalJson({ format, header, manifest }), 'utf8');

export function signEvidence(key: EvidenceKey, header: Omit<EvidenceHeader, 'keyId'>, entries: EvidenceEntry[]): EvidenceDocument {
  const fullHeader: EvidenceHeader = { ...header, keyId: key.keyId };
  const manifest = manifestOf(fullHeader, entries);
  const value = edSign(null, signedBytes(EVIDENCE_FORMAT, fullHeader, manifest), key.privateKey).toString('base64');
  return { format: EVIDENCE_FORMAT, header: fullHeader, entries, manifest, signature: { algorithm: 'Ed25519', keyId: key.keyId, value } };
}

const NOTICE_LABEL: Record<NoticeKind, string> = {
  'incident-update': 'incident update',
  'breach-notice': 'breach notice',
  maintenance: 'maintenance notice',
  'change-notice': 'change notice',
  announcement: 'announcement',
  postmortem: 'postmortem',
  'objection-acknowledgement': 'objection acknowledgement',
  other: 'notice',
};

/** "breach notice 2 of incident 12", "change notice 4", for people. */
export function describeNotice(notice: Partial<EvidenceNotice> | undefined): string {
  if (!notice || typeof notice !== 'object') return 'notice';
  const label = NOTICE_LABEL[notice.kind as NoticeKind] ?? 'notice';
  if (notice.kind === 'breach-notice' && notice.phase) return `${label} ${notice.phase} of incident ${notice.incidentId}`;
  if (notice.incidentId !== undefined) return `${label} of incident ${notice.incidentId}`;
  if (notice.noticeId !== undefined) return `${label} ${notice.noticeId}`;
  if (notice.announcementId !== undefined) return `${label} ${notice.announcementId}`;
  return label;
}

/** An address shortened for a problem line: enough to find the entry, not a copy of the personal data. */
function shortAddress(address: unknown): string {
  if (typeof address !== 'string') return 'an erased address';
  return address.length > 12 ? `${address.slice(0, 8)}…` : address;
}

function describeEntry(n: number, entry: unknown): string {
  const e = (entry ?? {}) as Partial<EvidenceEntry>;
  return `entry ${n} (${typeof e.channel === 'string' ? e.channel : '?'} to ${shortAddress(e.address)}, ${describeNotice(e.notice)})`;
}

function changedFields(expected: Record<string, string>, actual: Record<string, string>): string[] {
  const problems: string[] = [];
  for (const [field, hash] of Object.entries(expected)) {
    if (!(field in actual)) problems.push(`field \`${field}\` removed`);
    else if (actual[field] !== hash) problems.push(`field \`${field}\` changed`);
  }
  for (const field of Object.keys(actual)) if (!(field in expected)) problems.push(`field \`${field}\` added`);
  return problems;
}

export type EvidenceVerification = { ok: true; entries: number; keyId: string } | { ok: false; problems: string[] };

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Parses a document's text; null with a reason when it is not one. */
export function parseEvidence(text: string): { ok: true; document: EvidenceDocument } | { ok: false; problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not JSON: this is not an evidence document' };
  }
  if (!isRecord(value) || value.format !== EVIDENCE_FORMAT)
    return { ok: false, problem: `not an evidence document (format is not ${EVIDENCE_FORMAT})` };
  const { header, entries, manifest, signature } = value;
  if (!isRecord(header) || !Array.isArray(entries) || !isRecord(manifest) || !isRecord(signature))
    return { ok: false, problem: 'the document lacks its header, entries, manifest or signature' };
  if (!isRecord(manifest.header) || !Array.isArray(manifest.entries) || typeof signature.value !== 'string')
    return { ok: false, problem: 'the manifest or the signature is malformed' };
  return { ok: true, document: value as unknown as EvidenceDocument };
}

/**
 * Checks a document against a public key: the signature over the header and manifest, then every
 * entry's fields against the manifest's hashes. Every problem found, one line each, naming what changed.
 */
export function verifyEvidence(document: EvidenceDocument, key: EvidencePublicKey): EvidenceVerification {
  const problems: string[] = [];
  const { header, manifest, entries, signature } = document;
  if (signature.keyId !== key.keyId)
    problems.push(`signed with key ${String(signature.keyId).slice(0, 16)}…, not with the key given (${key.keyId.slice(0, 16)}…)`);
  let signatureOk = false;
  try {
    signatureOk = edVerify(null, signedBytes(document.format, header, manifest), key.publicKey, Buffer.from(signature.value, 'base64'));
  } catch {
    signatureOk = false;
  }
  if (!signatureOk) {
    const headerChanges = changedFields(manifest.header, fieldHashes(header as unknown as Record<string, unknown>));
    if (headerChanges.length) problems.push(...headerChanges.map((c) => `signature does not match: header ${c}`));
    else if (signature.keyId === key.keyId)
      problems.push('signature does not match: the manifest (the hashes the signature covers) was changed');
    else problems.push('signature does not match this key');
  }
  if (header.keyId !== signature.keyId && signatureOk) problems.push('the header names another key than the signature');
  const count = Math.max(entries.length, manifest.entries.length);
  for (let i = 0; i < count; i++) {
    const entry = entries[i];
    const signed = manifest.entries[i];
    if (!signed) {
      problems.push(`${describeEntry(i + 1, entry)}: added, it is not in the signed manifest`);
      continue;
    }
    if (!isRecord(entry)) {
      problems.push(`entry ${i + 1}: removed (the signed manifest lists ${manifest.entries.length} entries)`);
      continue;
    }
    if (sha256(entry) === signed.hash) continue;
    const changes = changedFields(signed.fields ?? {}, fieldHashes(entry));
    const what = changes.length ? changes.join(', ') : 'changed';
    problems.push(`${describeEntry(i + 1, entry)}: ${what}`);
  }
  if (header.notices !== entries.length && problems.length === 0)
    problems.push(`the header counts ${header.notices} notices, the document holds ${entries.length}`);
  return problems.length ? { ok: false, problems } : { ok: true, entries: entries.length, keyId: key.keyId };
}
