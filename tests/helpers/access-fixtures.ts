/**
 * Rows of customers' access to gated documents (db/schema/access.ts) written straight into a test
 * database on either engine, through the builder (db/engine/query.ts): customers (sealed email
 * recipients, as src/core/notify/recipients.ts adds them), requests, grants, NDA texts and acceptances,
 * views and downloads. For tests of what the console shows of them, independent of the flows that
 * make them (src/core/access/*: requests, reader).
 */
import { createHash } from 'node:crypto';
import { query } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import { ensureRecipient, type Keys } from '../../src/core/notify/recipients.ts';
import { TEST_KEYS } from './notify.ts';

const T0 = new Date('2026-11-01T09:00:00Z');

/** The customer with this verified email address: its recipient id (the same one however often asked). */
export async function customerOn(database: Database, email: string, keys: Keys = TEST_KEYS): Promise<number> {
  return database.transaction(async (tx) => (await ensureRecipient(tx, keys, { channel: 'email', address: email }, T0)).id);
}

export interface RequestFixture {
  recipientId: number;
  name: string;
  company: string;
  documents: string[];
  status: 'unverified' | 'pending' | 'approved' | 'refused';
  createdAt: Date;
  domain?: string;
  reason?: string;
  verifiedAt?: Date | null;
  decidedVia?: 'rule' | 'staff' | null;
  rulePattern?: string | null;
  decidedBy?: number | null;
  decidedAt?: Date | null;
}

export async function requestOn(database: Database, r: RequestFixture): Promise<number> {
  return database.transaction(async (tx) => {
    const q = query(tx);
    const [row] = await q.db
      .insert(q.t.accessRequests)
      .values({
        recipientId: r.recipientId,
        domain: r.domain ?? 'example.com',
        name: r.name,
        company: r.company,
        reason: r.reason ?? 'Vendor review',
        documents: r.documents,
        status: r.status,
        createdAt: r.createdAt,
        verifiedAt: r.verifiedAt ?? (r.status === 'unverified' ? null : r.createdAt),
        decidedVia: r.decidedVia ?? null,
        ruleId: null,
        rulePattern: r.rulePattern ?? null,
        decidedBy: r.decidedBy ?? null,
        decidedAt: r.decidedAt ?? null,
        trustCenterId: q.trustCenter,
      })
      .returning({ id: q.t.accessRequests.id });
    if (!row) throw new Error('no request inserted');
    return row.id;
  });
}

export interface GrantFixture {
  recipientId: number;
  name: string;
  company: string;
  documents: string[];
  createdAt: Date;
  expiresAt: Date;
  requestId?: number | null;
  createdBy?: number | null;
  revokedAt?: Date | null;
  revokedBy?: number | null;
  expiryNoticeAt?: Date | null;
}

export async function grantOn(database: Database, g: GrantFixture): Promise<number> {
  return database.transaction(async (tx) => {
    const q = query(tx);
    const [row] = await q.db
      .insert(q.t.accessGrants)
      .values({
        requestId: g.requestId ?? null,
        recipientId: g.recipientId,
        name: g.name,
        company: g.company,
        documents: g.documents,
        createdAt: g.createdAt,
        createdBy: g.createdBy ?? null,
        expiresAt: g.expiresAt,
        revokedAt: g.revokedAt ?? null,
        revokedBy: g.revokedBy ?? null,
        expiryNoticeAt: g.expiryNoticeAt ?? null,
        trustCenterId: q.trustCenter,
      })
      .returning({ id: q.t.accessGrants.id });
    if (!row) throw new Error('no grant inserted');
    return row.id;
  });
}

/** An NDA text as first accepted; returns its hash (SHA-256 of the body). */
export async function ndaTextOn(database: Database, title: string, body: string, at: Date = T0): Promise<string> {
  const hash = createHash('sha256').update(body).digest('hex');
  await database.transaction(async (tx) => {
    const q = query(tx);
    await q.db
      .insert(q.t.ndaTexts)
      .values({ hash, name: 'mutual-nda', title, body, firstAcceptedAt: at, trustCenterId: q.trustCenter })
      .onConflictDoNothing();
  });
  return hash;
}

export interface AcceptanceFixture {
  ndaHash: string;
  recipientId: number;
  grantId?: number | null;
  fullName: string;
  company: string;
  acceptedAt: Date;
  ip?: string | null;
  userAgent?: string | null;
}

export async function acceptanceOn(database: Database, a: AcceptanceFixture): Promise<number> {
  return database.transaction(async (tx) => {
    const q = query(tx);
    const [row] = await q.db
      .insert(q.t.ndaAcceptances)
      .values({
        ndaHash: a.ndaHash,
        recipientId: a.recipientId,
        grantId: a.grantId ?? null,
        fullName: a.fullName,
        company: a.company,
        acceptedAt: a.acceptedAt,
        ip: a.ip ?? null,
        userAgent: a.userAgent ?? null,
        trustCenterId: q.trustCenter,
      })
      .returning({ id: q.t.ndaAcceptances.id });
    if (!row) throw new Error('no acceptance inserted');
    return row.id;
  });
}

export interface ViewFixture {
  grantId: number;
  recipientId: number;
  document: string;
  kind: 'view' | 'download';
  at: Date;
  ip?: string | null;
}

export async function viewOn(database: Database, v: ViewFixture): Promise<number> {
  return database.transaction(async (tx) => {
    const q = query(tx);
    const [row] = await q.db
      .insert(q.t.documentViews)
      .values({
        grantId: v.grantId,
        recipientId: v.recipientId,
        document: v.document,
        kind: v.kind,
        at: v.at,
        watermark: `watermark ${v.recipientId}`,
        ip: v.ip ?? null,
        userAgent: 'tests',
        trustCenterId: q.trustCenter,
      })
      .returning({ id: q.t.documentViews.id });
    if (!row) throw new Error('no view inserted');
    return row.id;
  });
}
