/**
 * `candor evidence export` writes the signed evidence of notification for an organisation, a
 * subscriber, an address, an incident or a change notice (src/core/evidence/collect.ts), audited as
 * the system (`candor cli`). `candor evidence verify` checks a document (JSON, or a PDF carrying it)
 * against this installation's published key, or one given with `--key` (a PEM file, or the URL of
 * /.well-known/candor-evidence-key): exit 0 when it holds, 1 with one line per problem naming what
 * was changed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { type EvidenceScope, exportEvidence } from '../core/evidence/collect.ts';
import { parseEvidence, verifyEvidence } from '../core/evidence/document.ts';
import { deriveEvidenceKey, type EvidencePublicKey, parsePublicKey } from '../core/evidence/key.ts';
import { type CliCommand, CliError, openContext, parseOptions } from './command.ts';

const ID = /^\d{1,15}$/;

function parseDate(raw: string | undefined, what: string): Date | null {
  if (raw === undefined) return null;
  const value = /^\d{4}-\d{2}-\d{2}$/.test(raw.trim()) ? new Date(`${raw.trim()}T00:00:00Z`) : new Date(raw.trim());
  if (Number.isNaN(value.getTime())) throw new CliError(`--${what} must be a date (YYYY-MM-DD, UTC) or an ISO 8601 time, got "${raw}"`, 2);
  return value;
}

function scopeOf(values: Record<string, string | boolean | undefined>): EvidenceScope {
  const given = ['organisation', 'subscriber', 'address', 'incident', 'notice'].filter((k) => typeof values[k] === 'string');
  if (given.length !== 1) throw new CliError('give exactly one of --organisation, --subscriber, --address, --incident, --notice', 2);
  const number = (name: string) => {
    const raw = String(values[name]).trim();
    if (!ID.test(raw)) throw new CliError(`--${name} must be a number, got "${raw}"`, 2);
    return Number(raw);
  };
  switch (given[0]) {
    case 'organisation':
      return { type: 'organisation', organisation: String(values.organisation) };
    case 'subscriber':
      return { type: 'subscriber', subscriberId: number('subscriber') };
    case 'address':
      return { type: 'address', address: String(values.address) };
    case 'incident':
      return { type: 'incident', incidentId: number('incident') };
    default:
      return { type: 'notice', noticeId: number('notice') };
  }
}

export const evidenceExport: CliCommand = {
  name: ['evidence', 'export'],
  usage: 'evidence export --organisation X|--subscriber N|--address A|--incident N|--notice N [--from] [--to] --out FILE',
  summary: 'write the signed evidence of what was sent, and when (JSON; .pdf for people)',
  async run(args) {
    const { values, positionals } = parseOptions(args, {
      organisation: { type: 'string' },
      subscriber: { type: 'string' },
      address: { type: 'string' },
      incident: { type: 'string' },
      notice: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
    });
    if (positionals.length > 0) throw new CliError(`evidence export takes no arguments, got: ${positionals.join(' ')}`, 2);
    const scope = scopeOf(values);
    const period = { from: parseDate(values.from, 'from'), to: parseDate(values.to, 'to') };
    if (!values.out) throw new CliError('--out FILE is required (.json, or .pdf for the document for people)', 2);
    const out = values.out;
    const context = await openContext();
    try {
      const pdf = out.toLowerCase().endsWith('.pdf');
      const result = await exportEvidence(
        {
          database: context.database,
          keys: context.keys,
          now: context.now(),
          organisation: context.content.site.organisation.name,
          publicUrl: context.config.publicUrl,
          actor: { type: 'system' },
          ip: null,
          userAgent: 'candor cli',
        },
        scope,
        period,
        pdf ? 'pdf' : 'json',
      );
      if (!result.ok) throw new CliError(result.message);
      const json = `${JSON.stringify(result.document, null, 2)}\n`;
      if (pdf) {
        const { evidencePdf } = await import('../core/evidence/pdf.ts');
        writeFileSync(out, await evidencePdf(result.document, json));
      } else writeFileSync(out, json);
      console.log(`wrote ${out}: ${result.document.header.notices} notices, signed with key ${result.document.signature.keyId}`);
      return 0;
    } finally {
      await context.database.close();
    }
  },
};

async function loadKey(raw: string): Promise<EvidencePublicKey> {
  let text: string;
  if (/^https?:\/\//i.test(raw)) {
    try {
      const res = await fetch(raw, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new CliError(`could not fetch the key from ${raw}: HTTP ${res.status}`);
      text = await res.text();
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`could not fetch the key from ${raw}: ${(err as Error).message}`);
    }
  } else {
    try {
      text = readFileSync(raw, 'utf8');
    } catch (err) {
      throw new CliError(`could not read the key file ${raw}: ${(err as Error).message}`);
    }
  }
  const key = parsePublicKey(text);
  if (!key) throw new CliError(`${raw} holds no Ed25519 public key in PEM`);
  return key;
}

/** The JSON document in a file: the file itself, or the one a PDF export carries as its attachment. */
async function documentText(file: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new CliError(`could not read ${file}: ${(err as Error).message}`);
  }
  if (bytes.subarray(0, 5).toString('latin1') !== '%PDF-') return bytes.toString('utf8');
  const { embeddedEvidence } = await import('../core/evidence/pdf.ts');
  const text = await embeddedEvidence(bytes);
  if (text === null) throw new CliError(`${file} is a PDF without an attached evidence document (evidence.json)`);
  return text;
}

export const evidenceVerify: CliCommand = {
  name: ['evidence', 'verify'],
  usage: 'evidence verify FILE [--key PEM-FILE|URL]',
  summary: "check an evidence document's signature; name every field changed",
  async run(args) {
    const { values, positionals } = parseOptions(args, { key: { type: 'string' } });
    if (positionals.length !== 1) throw new CliError('evidence verify takes one file (the .json or .pdf an export wrote)', 2);
    const file = positionals[0] as string;
    const parsed = parseEvidence(await documentText(file));
    if (!parsed.ok) {
      console.log(`${file}: ${parsed.problem}`);
      return 1;
    }
    let key: EvidencePublicKey;
    if (values.key) key = await loadKey(values.key);
    else {
      // this installation's own key, from its secret
      const context = await openContext();
      try {
        key = deriveEvidenceKey(context.keys.secret);
      } finally {
        await context.database.close();
      }
    }
    const result = verifyEvidence(parsed.document, key);
    if (result.ok) {
      console.log(`${file}: valid, ${result.entries} notices, signed with key ${result.keyId}`);
      return 0;
    }
    for (const problem of result.problems) console.log(`${file}: ${problem}`);
    return 1;
  },
};
