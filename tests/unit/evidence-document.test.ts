/**
 * The signed evidence document without a database (src/core/evidence/document.ts): what a verifier
 * says about entries removed, added or reordered, a changed manifest, and a document signed with
 * another key; and that the key is the same for the same secret and differs for another.
 */
import { describe, expect, it } from 'vitest';
import { type EvidenceEntry, signEvidence, verifyEvidence } from '../../src/core/evidence/document.ts';
import { deriveEvidenceKey, parsePublicKey, publishedKeyText } from '../../src/core/evidence/key.ts';

const key = deriveEvidenceKey('unit-test-secret-of-sufficient-length');
const entry = (n: number, channel: string, address: string): EvidenceEntry => ({
  n,
  notificationId: n,
  deliveryId: 100 + n,
  notice: { kind: 'change-notice', title: 'New subprocessor', noticeId: 7, effectiveOn: '2027-01-31', objectionDeadline: '2027-01-15' },
  channel,
  address,
  status: 'sent',
  publishedAt: '2026-12-01T10:00:00.000Z',
  acceptedAt: '2026-12-01T10:00:01.000Z',
  acceptedBy: 'send',
  deliveredAt: null,
  providerMessageId: `id-${n}`,
  content: { subject: 'We are adding a subprocessor', text: 'Object by 15 January.' },
  audit: { id: 3, hash: 'f'.repeat(64), action: 'changes.published' },
});
const header = {
  issuer: { organisation: 'Lumenwork', publicUrl: 'https://trust.example/' },
  scope: { type: 'subscriber' as const, id: '5', label: 'subscriber #5' },
  period: { from: null, to: null },
  generatedAt: '2026-12-04T00:00:00.000Z',
  auditHead: { id: 9, hash: 'e'.repeat(64) },
  notices: 2,
  contentNote: 'as stored',
};
const signed = () => signEvidence(key, header, [entry(1, 'email', 'a@customer.example'), entry(2, 'sms', '+447700900001')]);

describe('verifyEvidence', () => {
  it('accepts the document as signed, with the published key read back from its PEM', () => {
    const published = parsePublicKey(publishedKeyText(key));
    expect(published?.keyId).toBe(key.keyId);
    expect(verifyEvidence(signed(), published ?? key)).toEqual({ ok: true, entries: 2, keyId: key.keyId });
  });

  it('names a change notice’s objection deadline when it was changed', () => {
    const doc = signed();
    (doc.entries[1] as EvidenceEntry).notice.objectionDeadline = '2027-01-25';
    expect(verifyEvidence(doc, key)).toEqual({
      ok: false,
      problems: ['entry 2 (sms to +4477009…, change notice 7): field `notice.objectionDeadline` changed'],
    });
  });

  it('names an entry removed and one added', () => {
    const removed = signed();
    removed.entries.pop();
    expect(verifyEvidence(removed, key)).toEqual({ ok: false, problems: ['entry 2: removed (the signed manifest lists 2 entries)'] });
    const added = signed();
    added.entries.push(entry(3, 'email', 'x@y.example'));
    expect(verifyEvidence(added, key)).toEqual({
      ok: false,
      problems: ['entry 3 (email to x@y.example, change notice 7): added, it is not in the signed manifest'],
    });
  });

  it('says the manifest was changed when its hashes were replaced to match a changed entry', () => {
    const doc = signed();
    (doc.manifest.entries[0] as { hash: string }).hash = '0'.repeat(64);
    const result = verifyEvidence(doc, key);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems[0]).toBe('signature does not match: the manifest (the hashes the signature covers) was changed');
  });

  it('refuses a document signed with another key, and derives the same key from the same secret', () => {
    const other = deriveEvidenceKey('another-secret-of-sufficient-length');
    expect(deriveEvidenceKey('unit-test-secret-of-sufficient-length').keyId).toBe(key.keyId);
    expect(other.keyId).not.toBe(key.keyId);
    const result = verifyEvidence(signed(), other);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems).toContain('signature does not match this key');
  });
});
