/**
 * The NDA customers accept before they read a gated document. The texts are content/ndas/<name>.md; the
 * one in force is the latest whose effective day (UTC) is on or before today. A text's version is the
 * SHA-256 (hex) of its body as UTF-8, so changing the file is a new version that must be accepted again.
 * At its first acceptance the text goes into `nda_texts` under that version (append-only), so what a
 * customer accepted stays retrievable byte for byte whatever becomes of the file. Each acceptance is a row
 * with the typed name and company, time, address and browser, and the customer gets a copy by email.
 */
import { createHash } from 'node:crypto';
import MarkdownIt from 'markdown-it';
import type { Database } from '../../../db/engine/types.ts';
import {
  acceptanceOf,
  activeGrantsOf,
  type GrantRow,
  insertNdaAcceptance,
  insertNdaTextOnce,
  type NdaAcceptanceRow,
  type NdaTextRow,
  ndaTextByHash,
} from '../../stores/reader-access.ts';
import { recipientById } from '../../stores/subscribers.ts';
import { writeAudit } from '../audit/log.ts';
import type { NdaSource } from '../content/load.ts';
import { enqueueNotification } from '../notify/outbox.ts';
import { openRecipient } from '../notify/recipients.ts';
import { escapeHtml } from '../text/escape.ts';
import type { ReaderContext, ReaderResult, ReaderSession } from './reader-sessions.ts';

export interface CurrentNda {
  nda: NdaSource;
  /** SHA-256 (hex) of the body as UTF-8 */
  version: string;
}

export const ndaVersion = (body: string): string => createHash('sha256').update(body, 'utf8').digest('hex');

// No raw HTML from the file, markdown-it's own link check (no javascript: and the like); headings as written (## under the page's h1).
const markdown = new MarkdownIt({ html: false, linkify: false, typographer: false });

/** The NDA's text as HTML for its page. */
export const ndaHtml = (nda: NdaSource): string => markdown.render(nda.body);

/** The NDA in force at `now`: the latest effective on or before that day (UTC); null when there is none. */
export function currentNda(ndas: readonly NdaSource[], now: Date): CurrentNda | null {
  const inForce = ndas.filter((n) => n.effective.getTime() <= now.getTime()).sort((a, b) => b.effective.getTime() - a.effective.getTime());
  const nda = inForce[0];
  return nda ? { nda, version: ndaVersion(nda.body) } : null;
}

/** The reader's acceptance of the NDA in force, if they gave one. */
export function acceptanceOfCurrent(database: Database, recipientId: number, current: CurrentNda): Promise<NdaAcceptanceRow | undefined> {
  return database.read((r) => acceptanceOf(r, recipientId, current.version));
}

/** A text as accepted, by version: exactly what was shown when it was first accepted. */
export function acceptedNdaText(database: Database, version: string): Promise<NdaTextRow | undefined> {
  return database.read((r) => ndaTextByHash(r, version));
}

export interface NdaAcceptanceInput {
  fullName: string;
  company: string;
  agree: boolean;
  /** the version the form showed: accepting a text that changed since is refused */
  version: string;
}

const LIMIT = 200;

function copyEmail(organisation: string, nda: CurrentNda, who: { name: string; company: string; email: string; at: Date }) {
  const time = `${who.at.toISOString().replace('T', ' ').slice(0, 19)} UTC`;
  const facts: [string, string][] = [
    ['Name', who.name],
    ['Company', who.company],
    ['Email', who.email],
    ['Accepted', time],
    ['Version', nda.version],
  ];
  const intro = `You accepted ${organisation}'s ${nda.nda.title}. This is your copy: the text you accepted and what you gave.`;
  return {
    subject: `Your copy: ${nda.nda.title}`,
    html: [
      `<p>${escapeHtml(intro)}</p>`,
      `<table>${facts.map(([k, v]) => `<tr><th align="left">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>`,
      `<h1>${escapeHtml(nda.nda.title)}</h1>`,
      `<pre style="white-space: pre-wrap; font-family: inherit">${escapeHtml(nda.nda.body)}</pre>`,
    ].join('\n'),
    text: `${intro}\n\n${facts.map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${nda.nda.title}\n\n${nda.nda.body}`,
  };
}

/** The grant whose company prefills the form and which the acceptance names: the newest active one. */
export async function latestActiveGrant(database: Database, recipientId: number, now: Date): Promise<GrantRow | undefined> {
  return (await database.read((r) => activeGrantsOf(r, recipientId, now)))[0];
}

/** Records the reader's acceptance of the NDA in force (the caller checked the reader session). */
export async function acceptNda(
  ctx: ReaderContext,
  ndas: readonly NdaSource[],
  session: ReaderSession,
  input: NdaAcceptanceInput,
): Promise<ReaderResult<{ version: string }>> {
  const current = currentNda(ndas, ctx.now);
  if (!current) return { ok: false, message: 'There is no agreement to accept at the moment. Contact us.' };
  if (input.version !== current.version)
    return { ok: false, message: 'The agreement changed while you were reading it. Read the current text below and accept it.' };
  const fullName = input.fullName.replace(/\s+/g, ' ').trim();
  const company = input.company.replace(/\s+/g, ' ').trim();
  if (fullName === '') return { ok: false, message: 'Full name: type your full name.' };
  if (fullName.length > LIMIT) return { ok: false, message: `Full name: at most ${LIMIT} characters.` };
  if (company === '') return { ok: false, message: 'Company: type the company you act for.' };
  if (company.length > LIMIT) return { ok: false, message: `Company: at most ${LIMIT} characters.` };
  if (!input.agree) return { ok: false, message: 'I agree: tick the box to accept the agreement.' };
  return ctx.database.transaction(async (tx) => {
    const grants = await activeGrantsOf(tx, session.recipientId, ctx.now);
    const grant = grants[0];
    if (!grant) return { ok: false, message: 'You have no access to documents at the moment.' };
    const recipient = await recipientById(tx, session.recipientId);
    if (!recipient) return { ok: false, message: 'You have no access to documents at the moment.' };
    const email = openRecipient(ctx.keys, recipient).address;
    await insertNdaTextOnce(tx, {
      hash: current.version,
      name: current.nda.name,
      title: current.nda.title,
      body: current.nda.body,
      firstAcceptedAt: ctx.now,
    });
    const acceptanceId = await insertNdaAcceptance(tx, {
      ndaHash: current.version,
      recipientId: session.recipientId,
      grantId: grant.id,
      fullName,
      company,
      acceptedAt: ctx.now,
      ip: ctx.client.ip,
      userAgent: ctx.client.userAgent?.slice(0, 512) ?? null,
    });
    await enqueueNotification(
      tx,
      {
        kind: 'reader-nda-copy',
        title: `Copy of ${current.nda.title}`,
        content: { email: copyEmail(ctx.organisation, current, { name: fullName, company, email, at: ctx.now }) },
        audience: { kind: 'recipients', ids: [session.recipientId], includePending: true },
      },
      ctx.now,
    );
    await writeAudit(
      tx,
      {
        actor: { type: 'anonymous' },
        ip: ctx.client.ip,
        userAgent: ctx.client.userAgent,
        action: 'access.nda.accepted',
        target: `recipient:${session.recipientId}`,
        summary: { acceptance: acceptanceId, grant: grant.id, nda: current.nda.name, version: current.version },
      },
      ctx.now,
    );
    return { ok: true, version: current.version };
  });
}
