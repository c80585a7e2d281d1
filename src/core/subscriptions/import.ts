/**
 * Importing subscribers from another status page's export, or from Candor's own (issue 17). The file
 * is read as a stream (csv-parse, row by row) and written a batch of rows per transaction; nothing
 * holds the whole file: what is kept while it runs is the counts, the first refused rows (capped),
 * and a 64-bit prefix of each address's blind index to find duplicates within the file.
 *
 * Each new address either keeps the consent the file records (active, consent record `import` /
 * `carried_over` with the file's opt-in time) or is sent the normal confirmation request through the
 * outbox (pending, `confirmation_requested`); a row the file marks unconfirmed is always asked. An
 * address already here is never changed: subscribed already counts as unchanged (their own choices
 * stand), and a suppressed address, one here without a subscription (known only as a documents
 * customer), or one that unsubscribed, asked to be erased or was removed by staff (only its blind
 * index is kept: src/stores/removed-addresses.ts) is refused: an import never resurrects it. A dry run reads and checks
 * the same way and writes only its run record and audit entry. Every run, dry or not, is audited with
 * its counts, never an address.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import type { Database, Tx } from '../../../db/engine/types.ts';
import { type RemovedAddress, removedByHash } from '../../stores/removed-addresses.ts';
import {
  addressesByHash,
  type FoundAddress,
  finishImportRun,
  type ImportConsent,
  type ImportFormat,
  insertConsents,
  insertImportRun,
  type NewConsent,
} from '../../stores/subscriber-imports.ts';
import { deleteSubscriberRow, insertSubscriber, insertTopics, type TopicRow } from '../../stores/subscribers.ts';
import { writeAudit } from '../audit/log.ts';
import { enqueueNotification } from '../notify/outbox.ts';
import { addressHash, ensureRecipient, type Keys, maskAddress } from '../notify/recipients.ts';
import { checkEmail, checkPhone } from './addresses.ts';
import { createEmailChallengeIn } from './challenges.ts';
import type { StaffAudit } from './context.ts';
import { checkTopics, formatLabels, type ImportRow, readHeader } from './import-formats.ts';
import { confirmationEmail } from './messages.ts';
import type { Topic } from './topics.ts';

export const IMPORT_BATCH_ROWS = 500;
/** Refused rows listed in a report; the rest are counted. */
export const REFUSED_LISTED = 1000;
/** A row longer than this is not a subscriber: csv-parse stops at it instead of buffering on. */
const MAX_ROW_BYTES = 16 * 1024;

export interface ImportOptions {
  format: ImportFormat;
  consent: ImportConsent;
  dryRun: boolean;
  /** the uploaded file's name, as recorded with the run */
  fileName: string;
}

export interface ImportContext {
  database: Database;
  keys: Keys;
  now: () => Date;
  publicUrl: URL;
  /** the organisation's name, for the confirmation message */
  organisation: string;
  /** content/components.yaml: ids and names, for mapping the file's components */
  components: readonly { id: string; name: string }[];
  /** who imports: the staff member (console) or the system (CLI) */
  audit: StaffAudit;
  staffId: number | null;
  batchRows?: number;
}

export interface ImportCounts {
  /** data rows read (the header not counted) */
  rows: number;
  /** new addresses (would be) added: carriedOver + confirmationRequested */
  imported: number;
  carriedOver: number;
  confirmationRequested: number;
  /** addresses subscribed here already (with the same choices, or their own choices kept) */
  unchanged: number;
  refused: number;
}

export interface RefusedRow {
  line: number;
  /** shortened, as the quarantine shows addresses */
  address: string;
  reason: string;
}

export type ImportReport = {
  importId: number;
  dryRun: boolean;
  format: ImportFormat;
  consent: ImportConsent;
  fileSha256: string;
  counts: ImportCounts;
  /** the first REFUSED_LISTED refused rows, in file order */
  refused: RefusedRow[];
  /** set when the file stopped being readable part-way: rows before it were imported (unless a dry run) */
  stoppedAt: { line: number; message: string } | null;
};

export type ImportResult = ({ ok: true } & ImportReport) | { ok: false; message: string };

/** A row ready to write: checked, its address normalised and indexed. */
interface Checked {
  row: ImportRow;
  channel: 'email' | 'sms';
  address: string;
  hash: string;
  topics: TopicRow[];
  organisation: string | null;
  /** carry consent over (active) or ask (pending) */
  method: 'carried_over' | 'confirmation_requested';
  topicNames: Topic[];
}

const refuse = (row: ImportRow, reason: string, address?: string): RefusedRow => ({
  line: row.line,
  address: address ?? (row.address ? maskLoosely(row.address) : ''),
  reason,
});

function maskLoosely(raw: string): string {
  const v = raw.trim();
  return v.includes('@') ? maskAddress('email', v.slice(0, 120)) : `${v.slice(0, 3)}…`;
}

/** Component names and ids of content/components.yaml, by lower-case name and id. */
function componentLookup(components: ImportContext['components']): Map<string, string> {
  const map = new Map<string, string>();
  for (const c of components) {
    map.set(c.name.trim().toLowerCase(), c.id);
    map.set(c.id.toLowerCase(), c.id);
  }
  return map;
}

/** What a row of another product follows: incidents and maintenance, narrowed to its components when it names some. */
function defaultTopics(components: string[]): TopicRow[] {
  return (['incidents', 'maintenance'] as const).flatMap((topic) =>
    (components.length > 0 ? components : ['']).map((component) => ({ topic, component })),
  );
}

class RowChecker {
  private readonly seen = new Set<string>();
  private readonly components: Map<string, string>;
  private readonly componentIds: Set<string>;
  private readonly ctx: ImportContext;
  private readonly options: ImportOptions;

  constructor(ctx: ImportContext, options: ImportOptions) {
    this.ctx = ctx;
    this.options = options;
    this.components = componentLookup(ctx.components);
    this.componentIds = new Set(ctx.components.map((c) => c.id));
  }

  check(row: ImportRow): Checked | RefusedRow {
    if (row.channel === 'webhook' || row.channel === 'slack')
      return refuse(
        row,
        `${row.channel === 'slack' ? 'Slack' : 'Webhook'} subscribers are not imported: they must sign up again (an endpoint answers a signed event, a Slack channel installs the app).`,
        '',
      );
    if (row.channel === 'other') return refuse(row, 'Unknown subscriber type: only email and SMS subscribers are imported.');
    if (row.suppressed) return refuse(row, 'The file marks this address as suppressed or unsubscribed: not imported.');
    let address: string;
    if (row.channel === 'email') {
      const email = checkEmail(row.address);
      if (!email.ok) return refuse(row, row.address.trim() === '' ? 'No email address.' : 'Not a valid email address.');
      address = email.value;
    } else {
      const raw = row.address.trim();
      const phone = checkPhone(raw, !raw.startsWith('+') && row.country && /^[A-Z]{2}$/.test(row.country) ? row.country : undefined);
      if (!phone.ok)
        return refuse(row, raw === '' ? 'No phone number.' : phone.message.replace(raw.slice(0, 40), 'The number').slice(0, 200));
      address = phone.value;
    }
    const masked = maskAddress(row.channel, address);
    let topics: TopicRow[];
    if (row.topics) {
      const checked = checkTopics(row.topics);
      if (!checked.ok) return refuse(row, `Unknown topic "${checked.unknown.slice(0, 40)}".`, masked);
      const unknown = row.topics.find((t) => t.component !== '' && !this.componentIds.has(t.component));
      if (unknown) return refuse(row, `Unknown component "${unknown.component.slice(0, 60)}" (not in components.yaml).`, masked);
      if (row.topics.length === 0) return refuse(row, 'The row follows no topic.', masked);
      topics = row.topics;
    } else {
      const ids: string[] = [];
      for (const name of row.components) {
        const id = this.components.get(name.toLowerCase());
        if (!id)
          return refuse(row, `Unknown component "${name.slice(0, 60)}" (no component of components.yaml has that name or id).`, masked);
        ids.push(id);
      }
      topics = defaultTopics([...new Set(ids)]);
    }
    const hash = addressHash(this.ctx.keys, row.channel, address);
    // 64 bits of the blind index: a false duplicate among 100,000 rows has odds of about 1 in 3.7 billion.
    const short = `${row.channel}:${hash.slice(0, 16)}`;
    if (this.seen.has(short)) return refuse(row, 'Duplicate: this address is on an earlier row of the file.', masked);
    this.seen.add(short);
    const method = this.options.consent === 'carry_over' && row.confirmed ? 'carried_over' : 'confirmation_requested';
    return {
      row,
      channel: row.channel,
      address,
      hash,
      topics,
      organisation: row.organisation ? row.organisation.slice(0, 200) : null,
      method,
      topicNames: [...new Set(topics.map((t) => t.topic as Topic))],
    };
  }
}

function refusalOfFound(found: FoundAddress): string | null {
  if (found.status === 'suppressed')
    return 'This address is suppressed here (bounced, complained or replied STOP): an import never resubscribes it.';
  if (found.status === 'removed') return 'This address was removed here: an import never resubscribes it.';
  if (found.subscriberId === null)
    return 'This address is here without a subscription (it unsubscribed, or is known only as a documents customer): an import never resubscribes it.';
  return null;
}

const removalWords: Record<RemovedAddress['reason'], string> = {
  unsubscribed: 'unsubscribed here',
  erased: 'asked to be erased here',
  removed_by_staff: 'was removed here by staff',
};

/** An address that left: the person withdrew (or staff removed them), which an old export cannot undo. */
function refusalOfRemoved(removed: RemovedAddress): string {
  const day = removed.removedAt.toISOString().slice(0, 10);
  return `This address ${removalWords[removed.reason]} on ${day}: an import never resubscribes it (signing up again on the status page does).`;
}

class ImportRun {
  readonly counts: ImportCounts = { rows: 0, imported: 0, carriedOver: 0, confirmationRequested: 0, unchanged: 0, refused: 0 };
  readonly refused: RefusedRow[] = [];
  /** a Candor file's subscriber id → the subscriber made for its first address (this run only) */
  private readonly groups = new Map<string, number>();
  private readonly ctx: ImportContext;
  private readonly options: ImportOptions;
  readonly importId: number;

  constructor(ctx: ImportContext, options: ImportOptions, importId: number) {
    this.ctx = ctx;
    this.options = options;
    this.importId = importId;
  }

  addRefused(r: RefusedRow): void {
    this.counts.refused++;
    if (this.refused.length < REFUSED_LISTED) this.refused.push(r);
  }

  /** Writes (or, dry, only looks up) one batch of checked rows in one transaction. */
  async batch(rows: Checked[]): Promise<void> {
    if (rows.length === 0) return;
    const now = this.ctx.now();
    const outcome = await this.ctx.database.transaction(async (tx) => {
      const refused: RefusedRow[] = [];
      const counts = { carriedOver: 0, confirmationRequested: 0, unchanged: 0 };
      const found = new Map<string, FoundAddress>();
      const withdrawn = new Map<string, RemovedAddress>();
      for (const channel of ['email', 'sms'] as const) {
        const hashes = rows.filter((r) => r.channel === channel).map((r) => r.hash);
        for (const [hash, f] of await addressesByHash(tx, channel, hashes)) found.set(`${channel}:${hash}`, f);
        for (const [hash, w] of await removedByHash(tx, channel, hashes)) withdrawn.set(`${channel}:${hash}`, w);
      }
      const consents: NewConsent[] = [];
      const groupsMade = new Map<string, number>();
      for (const c of rows) {
        const existing = found.get(`${c.channel}:${c.hash}`);
        if (existing) {
          const why = refusalOfFound(existing);
          if (why) refused.push(refuse(c.row, why, maskAddress(c.channel, c.address)));
          else counts.unchanged++;
          continue;
        }
        const removed = withdrawn.get(`${c.channel}:${c.hash}`);
        if (removed) {
          refused.push(refuse(c.row, refusalOfRemoved(removed), maskAddress(c.channel, c.address)));
          continue;
        }
        if (this.options.dryRun) {
          counts[c.method === 'carried_over' ? 'carriedOver' : 'confirmationRequested']++;
          continue;
        }
        const made = await this.add(tx, c, now, groupsMade);
        if (!made) {
          counts.unchanged++;
          continue;
        }
        consents.push({
          subscriberId: made.subscriberId,
          recipientId: made.recipientId,
          source: 'import',
          method: c.method,
          // someone asked to confirm has not opted in yet (the file's date is when they were added there)
          optedInAt: c.method === 'carried_over' ? c.row.optedInAt : null,
          optedInVia: (c.row.optedInVia ?? formatLabels[this.options.format]).slice(0, 100),
          importId: this.importId,
          importRow: c.row.line,
          recordedAt: now,
        });
        if (c.method === 'confirmation_requested') await this.askToConfirm(tx, c, made.recipientId, now);
        counts[c.method === 'carried_over' ? 'carriedOver' : 'confirmationRequested']++;
      }
      await insertConsents(tx, consents);
      return { refused, counts, groupsMade };
    });
    for (const [k, v] of outcome.groupsMade) this.groups.set(k, v);
    for (const r of outcome.refused) this.addRefused(r);
    this.counts.carriedOver += outcome.counts.carriedOver;
    this.counts.confirmationRequested += outcome.counts.confirmationRequested;
    this.counts.imported += outcome.counts.carriedOver + outcome.counts.confirmationRequested;
    this.counts.unchanged += outcome.counts.unchanged;
  }

  /**
   * Adds the address (and its subscriber with what they follow, unless a Candor file's earlier row
   * made it): three statements, no savepoint. The address goes in with ON CONFLICT DO NOTHING
   * (notify/recipients.ts `ensureRecipient`): when a sign-up added it since the batch looked (on
   * PostgreSQL the insert waits for that sign-up's transaction, then reads its row), the row returned
   * is theirs, the subscriber made here is deleted again (its topics with it, by foreign key), and
   * null says the address is counted unchanged.
   */
  private async add(
    tx: Tx,
    c: Checked,
    now: Date,
    groupsMade: Map<string, number>,
  ): Promise<{ subscriberId: number; recipientId: number } | null> {
    const groupKey = c.row.groupKey;
    const grouped = groupKey ? (groupsMade.get(groupKey) ?? this.groups.get(groupKey)) : undefined;
    let subscriberId = grouped;
    if (subscriberId === undefined) {
      subscriberId = await insertSubscriber(tx, c.organisation, c.row.subscribedAt ?? c.row.optedInAt ?? now);
      await insertTopics(tx, subscriberId, c.topics);
    }
    const status = c.method === 'carried_over' ? 'active' : 'pending';
    const recipient = await ensureRecipient(tx, this.ctx.keys, { channel: c.channel, address: c.address, subscriberId, status }, now);
    if (recipient.subscriberId !== subscriberId) {
      if (grouped === undefined) await deleteSubscriberRow(tx, subscriberId);
      return null;
    }
    if (groupKey && grouped === undefined) groupsMade.set(groupKey, subscriberId);
    return { subscriberId, recipientId: recipient.id };
  }

  /** The normal confirmation request (48-hour link), through the outbox: by email, or by SMS for a number. */
  private async askToConfirm(tx: Tx, c: Checked, recipientId: number, now: Date): Promise<void> {
    const token = await createEmailChallengeIn(tx, this.ctx.keys.secret, recipientId, now);
    const confirmUrl = new URL(`subscribe/confirm/${token}`, this.ctx.publicUrl).href;
    const content =
      c.channel === 'email'
        ? confirmationEmail(this.ctx.organisation, confirmUrl, c.topicNames)
        : {
            sms: {
              body: `${this.ctx.organisation} status alerts: we moved our status page. Confirm within 48 hours to keep receiving alerts; otherwise ignore this.`,
              link: confirmUrl,
            },
          };
    await enqueueNotification(
      tx,
      {
        kind: 'subscription',
        title: 'Confirm subscription',
        content,
        audience: { kind: 'recipients', ids: [recipientId], includePending: true },
      },
      now,
    );
  }
}

/** The file's bytes, hashed as they pass. */
async function* hashing(source: AsyncIterable<Uint8Array>, hash: ReturnType<typeof createHash>): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    hash.update(chunk);
    yield chunk;
  }
}

/**
 * Imports (or, `dryRun`, checks) a subscriber file read from `source` as it arrives. The run is
 * recorded first (`subscriber_imports`), each batch committed as it is read, and the run finished
 * and audited (`subscribers.imported`, or `subscribers.import_checked` for a dry run) with its counts.
 */
export async function importSubscribers(
  ctx: ImportContext,
  source: AsyncIterable<Uint8Array>,
  options: ImportOptions,
): Promise<ImportResult> {
  const fileName = options.fileName.replace(/[^\w.\- ]+/g, '_').slice(0, 200) || 'upload.csv';
  const importId = await ctx.database.transaction((tx) =>
    insertImportRun(tx, {
      format: options.format,
      fileName,
      dryRun: options.dryRun,
      consent: options.consent,
      createdBy: ctx.staffId,
      startedAt: ctx.now(),
    }),
  );
  const run = new ImportRun(ctx, options, importId);
  const checker = new RowChecker(ctx, options);
  const sha = createHash('sha256');
  const parser = Readable.from(hashing(source, sha)).pipe(
    parse({ bom: true, relax_column_count: true, skip_empty_lines: true, max_record_size: MAX_ROW_BYTES, info: true }),
  );
  const batchRows = ctx.batchRows ?? IMPORT_BATCH_ROWS;
  let read: ((cells: string[], line: number) => ImportRow) | null = null;
  let pending: Checked[] = [];
  let stoppedAt: ImportReport['stoppedAt'] = null;
  let failure: unknown = null;
  let headerProblem: string | null = null;
  try {
    for await (const record of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      if (!read) {
        const header = readHeader(options.format, record.record);
        if (!header.ok) {
          headerProblem = header.message;
          break;
        }
        read = header.read;
        continue;
      }
      run.counts.rows++;
      const checked = checker.check(read(record.record, record.info.lines));
      if ('reason' in checked) run.addRefused(checked);
      else pending.push(checked);
      if (pending.length >= batchRows) {
        await run.batch(pending);
        pending = [];
      }
    }
    await run.batch(pending);
  } catch (err) {
    if (!(err instanceof CsvError)) {
      // Our failure, not the file's: the batches before it are written, so the run is still finished
      // and audited with what it did, and then the error goes on (a 500 for the page, logged).
      failure = err;
      stoppedAt = { line: run.counts.rows, message: 'The import stopped on our side; the rows before this one were imported.' };
    } else {
      const line = (err as CsvError & { lines?: number }).lines ?? run.counts.rows + 1;
      stoppedAt = {
        line,
        message: `The file is not readable as CSV from line ${line}: ${err.message.replace(/^Invalid Record Length: |^CSV_\w+: /, '').slice(0, 200)}`,
      };
    }
  } finally {
    parser.destroy();
  }
  if (!read && !headerProblem && !stoppedAt) headerProblem = 'The file is empty: it has no header row.';
  const fileSha256 = sha.digest('hex');
  const counts = { ...run.counts };
  await ctx.database.transaction(async (tx) => {
    await finishImportRun(tx, importId, { fileSha256, counts: { ...counts }, finishedAt: ctx.now() });
    await writeAudit(
      tx,
      {
        ...ctx.audit,
        action: options.dryRun ? 'subscribers.import_checked' : 'subscribers.imported',
        target: `import:${importId}`,
        summary: {
          format: options.format,
          consent: options.consent,
          dryRun: options.dryRun,
          fileSha256,
          ...counts,
          ...(headerProblem || stoppedAt ? { stopped: true } : {}),
          ...(failure ? { failed: true } : {}),
        },
      },
      ctx.now(),
    );
  });
  if (failure) throw failure;
  if (headerProblem) return { ok: false, message: headerProblem };
  return {
    ok: true,
    importId,
    dryRun: options.dryRun,
    format: options.format,
    consent: options.consent,
    fileSha256,
    counts,
    refused: run.refused,
    stoppedAt,
  };
}

export const importFormats: readonly ImportFormat[] = ['statuspage', 'instatus', 'candor'];

/** Reads the form's or the command line's choice of format; null when it is none of them. */
export function parseFormat(value: string | null | undefined): ImportFormat | null {
  const v = (value ?? '').trim().toLowerCase();
  return (importFormats as readonly string[]).includes(v) ? (v as ImportFormat) : null;
}

/** `carry-over` / `carry_over` / `confirm`; null otherwise. */
export function parseConsent(value: string | null | undefined): ImportConsent | null {
  const v = (value ?? '').trim().toLowerCase().replace('-', '_');
  return v === 'carry_over' || v === 'confirm' ? v : null;
}
