import { beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import { auditActions } from '../../src/core/audit/actions.ts';
import {
  type AuditInput,
  entryHash,
  exportAudit,
  GENESIS_HASH,
  purgeAudit,
  queryAudit,
  recordAudit,
  verifyAuditChain,
} from '../../src/core/audit/log.ts';

const DAY = 86_400_000;
const T0 = new Date('2025-01-01T00:00:00Z');
const at = (days: number) => new Date(T0.getTime() + days * DAY);

const alice = { type: 'staff', id: 1, label: 'alice@example.com' } as const;
const bob = { type: 'staff', id: 2, label: 'bob@example.com' } as const;

const signIn = (overrides: Partial<AuditInput> = {}): AuditInput => ({
  actor: alice,
  ip: '203.0.113.7',
  userAgent: 'Mozilla/5.0',
  action: 'auth.sign_in.succeeded',
  target: 'staff:1',
  ...overrides,
});

/** Writes n entries one day apart, starting at T0. */
function seed(db: Db, n: number): void {
  for (let i = 0; i < n; i++) recordAudit(db, signIn({ summary: { attempt: i + 1 } }), at(i));
}

/** Runs SQL with a trigger out of the way, as someone with file access could. */
function behindTriggers(db: Db, trigger: string, statement: string, ...params: unknown[]): void {
  db.$client.exec(`DROP TRIGGER ${trigger}`);
  db.$client.prepare(statement).run(...params);
}

const rowOf = (db: Db, id: number) => queryAudit(db, { beforeId: id + 1, limit: 1 })[0];

let db: Db;
beforeEach(() => {
  db = openDatabase(':memory:');
});

describe('recording', () => {
  it('grows a chain that verifies', () => {
    expect(verifyAuditChain(db)).toEqual({ ok: true, checked: 0 });
    const first = recordAudit(db, signIn({ summary: { before: { role: 'viewer' }, after: { role: 'admin' } } }), at(0));
    const second = recordAudit(db, { actor: { type: 'system' }, action: 'audit.viewed' }, at(1));
    const third = recordAudit(db, { actor: { type: 'anonymous' }, action: 'auth.sign_in.failed', ip: '198.51.100.1' }, at(2));
    expect(first).toMatchObject({ id: 1, prevHash: GENESIS_HASH, actorType: 'staff', actorId: 1, actorLabel: 'alice@example.com' });
    expect(second).toMatchObject({ id: 2, prevHash: first.hash, actorType: 'system', actorId: null, summary: {} });
    expect(third).toMatchObject({ id: 3, prevHash: second.hash, actorType: 'anonymous', ip: '198.51.100.1' });
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(verifyAuditChain(db)).toEqual({ ok: true, checked: 3 });
    // What was returned is what was stored.
    expect(rowOf(db, 1)).toEqual(first);
  });

  it('hashes the same content the same way whatever the key order', () => {
    const a = recordAudit(db, signIn({ summary: { x: 1, nested: { b: 2, a: 1 } } }), at(0));
    const content = { ...a, at: a.at.getTime(), summary: { nested: { a: 1, b: 2 }, x: 1 } };
    expect(entryHash(GENESIS_HASH, content)).toBe(a.hash);
  });

  it('keeps text that SQLite would rewrite verifiable, and truncates the user agent', () => {
    const entry = recordAudit(db, signIn({ userAgent: `${'a'.repeat(511)}😀tail`, target: 'broken \ud800 surrogate' }), at(0));
    expect(entry.userAgent).toBe('a'.repeat(511));
    expect(entry.target).toBe('broken \ufffd surrogate');
    recordAudit(db, signIn({ userAgent: 'u'.repeat(2000), summary: { note: 'lone \udc00' } }), at(1));
    expect(rowOf(db, 2)?.userAgent).toHaveLength(512);
    expect(verifyAuditChain(db)).toEqual({ ok: true, checked: 2 });
  });

  it.each([
    [{ password: 'hunter2' }, 'summary.password'],
    [{ after: { apiKey: 'k' } }, 'summary.after.apiKey'],
    [{ changes: [{ field: 'name' }, { TOTP_Secret: 'x' }] }, 'summary.changes[1].TOTP_Secret'],
    [{ sessionToken: 't' }, 'summary.sessionToken'],
    [{ recoveryCodes: [] }, 'summary.recoveryCodes'],
    [{ passwordHash: 'h' }, 'summary.passwordHash'],
  ])('refuses a summary holding a secret: %o', (summary, path) => {
    expect(() => recordAudit(db, signIn({ summary }), at(0))).toThrow(`the key ${path} looks like one`);
    expect(queryAudit(db)).toEqual([]);
  });

  it('refuses an action it does not know', () => {
    const input = { ...signIn(), action: 'auth.made_up' } as unknown as AuditInput;
    expect(() => recordAudit(db, input, at(0))).toThrow(/unknown audit action/);
  });

  it('lists every action once', () => {
    expect(new Set(auditActions).size).toBe(auditActions.length);
    expect(auditActions).toContain('audit.purged');
  });
});

describe('append-only at the database level', () => {
  beforeEach(() => seed(db, 3));

  it('refuses UPDATE', () => {
    expect(() => db.$client.prepare("UPDATE audit_log SET target = 'staff:9' WHERE id = 2").run()).toThrow(
      'audit_log is append-only: entries cannot be changed',
    );
  });

  it('refuses DELETE of entries no purge covers', () => {
    expect(() => db.$client.prepare('DELETE FROM audit_log WHERE id = 1').run()).toThrow(
      'audit_log is append-only: only entries covered by a recorded purge can be removed',
    );
  });

  it('refuses changes to the purge records', () => {
    purgeAudit(db, 1, at(2));
    expect(() => db.$client.prepare('DELETE FROM audit_purges').run()).toThrow('audit_purges is append-only');
    expect(() => db.$client.prepare('UPDATE audit_purges SET up_to_id = 0').run()).toThrow('audit_purges is append-only');
  });
});

describe('verification catches tampering behind the triggers', () => {
  beforeEach(() => seed(db, 5));

  it('names an altered entry', () => {
    behindTriggers(db, 'audit_log_no_update', "UPDATE audit_log SET target = 'staff:2' WHERE id = 3");
    expect(verifyAuditChain(db)).toEqual({
      ok: false,
      checked: 2,
      firstBrokenId: 3,
      reason: 'content altered: its stored hash does not match its content',
    });
  });

  it('names an entry whose summary was altered', () => {
    behindTriggers(db, 'audit_log_no_update', 'UPDATE audit_log SET summary = ? WHERE id = 4', '{"attempt":40}');
    expect(verifyAuditChain(db)).toMatchObject({ ok: false, firstBrokenId: 4, reason: expect.stringMatching(/content altered/) });
  });

  it('names a deleted middle entry', () => {
    behindTriggers(db, 'audit_log_delete_only_purged', 'DELETE FROM audit_log WHERE id = 3');
    expect(verifyAuditChain(db)).toEqual({
      ok: false,
      checked: 2,
      firstBrokenId: 3,
      reason: 'entry #3 is missing (removed outside a recorded purge)',
    });
  });

  it('names entries cut from the end, even after new entries follow', () => {
    behindTriggers(db, 'audit_log_delete_only_purged', 'DELETE FROM audit_log WHERE id >= 4');
    expect(verifyAuditChain(db)).toEqual({
      ok: false,
      checked: 3,
      firstBrokenId: 4,
      reason: 'entries #4 to #5 are missing (the newest entries were removed)',
    });
    expect(recordAudit(db, signIn(), at(9)).id).toBe(6);
    expect(verifyAuditChain(db)).toMatchObject({ ok: false, firstBrokenId: 4 });
  });

  it('names the first entries when the oldest were removed without a purge', () => {
    behindTriggers(db, 'audit_log_delete_only_purged', 'DELETE FROM audit_log WHERE id <= 2');
    expect(verifyAuditChain(db)).toMatchObject({
      ok: false,
      checked: 0,
      firstBrokenId: 1,
      reason: expect.stringMatching(/#1 to #2 are missing/),
    });
  });

  it('still breaks at the next link when the altered entry gets a forged hash', () => {
    const original = rowOf(db, 3);
    if (!original) throw new Error('entry 3 missing');
    const forged = entryHash(original.prevHash, { ...original, at: original.at.getTime(), target: 'staff:2' });
    behindTriggers(db, 'audit_log_no_update', "UPDATE audit_log SET target = 'staff:2', hash = ? WHERE id = 3", forged);
    expect(verifyAuditChain(db)).toEqual({
      ok: false,
      checked: 3,
      firstBrokenId: 4,
      reason: 'chain link broken: its previous hash does not match the hash of entry #3',
    });
  });
});

describe('retention purge', () => {
  beforeEach(() => seed(db, 10)); // entries 1..10 on days 0..9

  it('does nothing when no entry is old enough', () => {
    expect(purgeAudit(db, 365, at(9))).toBeNull();
    expect(db.$client.prepare('SELECT COUNT(*) AS n FROM audit_purges').get()).toEqual({ n: 0 });
    expect(verifyAuditChain(db)).toEqual({ ok: true, checked: 10 });
  });

  it('removes old entries, records the purge, and keeps the chain verifiable', () => {
    const lastRemoved = rowOf(db, 4);
    // On day 10 with 6 days' retention the cutoff is day 4: entries of days 0..3 go.
    const result = purgeAudit(db, 6, at(10));
    expect(result).toMatchObject({ upToId: 4, removed: 4, entry: { id: 11, action: 'audit.purged', actorType: 'system' } });
    expect(result?.entry.summary).toEqual({ upToId: 4, removed: 4, retentionDays: 6, cutoff: at(4).toISOString() });
    expect(db.$client.prepare('SELECT up_to_id, last_hash, removed FROM audit_purges').all()).toEqual([
      { up_to_id: 4, last_hash: lastRemoved?.hash, removed: 4 },
    ]);
    expect(queryAudit(db).map((e) => e.id)).toEqual([11, 10, 9, 8, 7, 6, 5]);
    expect(verifyAuditChain(db)).toEqual({ ok: true, checked: 7 });

    const next = recordAudit(db, signIn(), at(11));
    expect(next.prevHash).toBe(result?.entry.hash);
    expect(verifyAuditChain(db)).toEqual({ ok: true, checked: 8 });

    // A second purge starts from the first one's end: cutoff day 8 takes entries 5..8.
    expect(purgeAudit(db, 3, at(11))).toMatchObject({ upToId: 8, removed: 4 });
    expect(verifyAuditChain(db)).toEqual({ ok: true, checked: 5 });
  });

  it('can remove every entry and still chain from the purge', () => {
    purgeAudit(db, 1, at(100));
    expect(queryAudit(db).map((e) => e.action)).toEqual(['audit.purged']);
    expect(verifyAuditChain(db)).toEqual({ ok: true, checked: 1 });
  });

  it('notices a tampered first entry after a purge', () => {
    purgeAudit(db, 6, at(10));
    behindTriggers(db, 'audit_log_no_update', 'UPDATE audit_log SET prev_hash = ? WHERE id = 5', GENESIS_HASH);
    expect(verifyAuditChain(db)).toEqual({
      ok: false,
      checked: 0,
      firstBrokenId: 5,
      reason: 'chain link broken: its previous hash does not match the hash of the last purged entry (#4)',
    });
  });

  it('refuses a retention that is not a whole number of days', () => {
    expect(() => purgeAudit(db, 0, at(10))).toThrow(/at least 1/);
    expect(() => purgeAudit(db, 1.5, at(10))).toThrow(/whole number/);
  });
});

describe('querying', () => {
  beforeEach(() => {
    seed(db, 5); // alice, sign-ins, days 0..4
    recordAudit(db, signIn({ actor: bob, action: 'staff.role_changed', target: 'staff:1' }), at(5));
    recordAudit(db, signIn({ actor: bob, action: 'auth.sign_out' }), at(6));
    recordAudit(db, { actor: { type: 'anonymous' }, action: 'auth.sign_in.failed' }, at(7));
  });

  it('returns newest first, 100 by default', () => {
    expect(queryAudit(db).map((e) => e.id)).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
    expect(queryAudit(db)[0]?.at).toEqual(at(7));
  });

  it('filters by actor and action', () => {
    expect(queryAudit(db, { actorId: 2 }).map((e) => e.action)).toEqual(['auth.sign_out', 'staff.role_changed']);
    expect(queryAudit(db, { action: 'auth.sign_in.failed' }).map((e) => e.id)).toEqual([8]);
    expect(queryAudit(db, { actorId: 1, action: 'auth.sign_out' })).toEqual([]);
  });

  it('filters by a date range, from inclusive and to exclusive', () => {
    expect(queryAudit(db, { from: at(2), to: at(5) }).map((e) => e.id)).toEqual([5, 4, 3]);
    expect(queryAudit(db, { from: at(6) }).map((e) => e.id)).toEqual([8, 7]);
  });

  it('pages with beforeId and caps the limit', () => {
    const page1 = queryAudit(db, { limit: 3 });
    expect(page1.map((e) => e.id)).toEqual([8, 7, 6]);
    const page2 = queryAudit(db, { limit: 3, beforeId: page1.at(-1)?.id });
    expect(page2.map((e) => e.id)).toEqual([5, 4, 3]);
    expect(queryAudit(db, { limit: 3, beforeId: 3 }).map((e) => e.id)).toEqual([2, 1]);
    expect(queryAudit(db, { limit: 0 })).toHaveLength(1);

    for (let i = 0; i < 1100; i++) recordAudit(db, { actor: { type: 'system' }, action: 'audit.viewed' }, at(8));
    expect(queryAudit(db, { limit: 5000 })).toHaveLength(1000);
  });
});

describe('export', () => {
  const parseCsv = (csv: string): string[][] => {
    // Minimal RFC 4180 reader, enough to check the writer round-trips.
    const rows: string[][] = [];
    let row: string[] = [];
    let cell = '';
    let quoted = false;
    for (let i = 0; i < csv.length; i++) {
      const c = csv[i];
      if (quoted) {
        if (c === '"' && csv[i + 1] === '"') {
          cell += '"';
          i++;
        } else if (c === '"') quoted = false;
        else cell += c;
      } else if (c === '"') quoted = true;
      else if (c === ',') {
        row.push(cell);
        cell = '';
      } else if (c === '\r' && csv[i + 1] === '\n') {
        row.push(cell);
        rows.push(row);
        row = [];
        cell = '';
        i++;
      } else cell += c;
    }
    return rows;
  };

  beforeEach(() => {
    recordAudit(db, signIn({ target: 'doc "security", v2\nline two' }), at(0));
    recordAudit(
      db,
      signIn({ actor: { type: 'staff', id: 3, label: '=HYPERLINK("http://evil")' }, userAgent: '+cmd', target: '@SUM(A1)' }),
      at(1),
    );
    recordAudit(db, signIn({ target: '-2+3', ip: '\t198.51.100.9', summary: { note: 'a,b' } }), at(2));
    recordAudit(db, { actor: { type: 'system' }, action: 'audit.viewed', target: '\rcr' }, at(3));
  });

  it('writes RFC 4180 CSV with a header, escaping quotes, commas and newlines', () => {
    const csv = exportAudit(db, {}, 'csv');
    expect(csv.startsWith('id,at,actor_type,actor_id,actor_label,ip,user_agent,action,target,summary,prev_hash,hash\r\n')).toBe(true);
    expect(csv).toContain('"doc ""security"", v2\nline two"');
    const rows = parseCsv(csv);
    expect(rows).toHaveLength(5);
    expect(rows.every((r) => r.length === 12)).toBe(true);
    expect(rows[1]?.slice(0, 3)).toEqual(['1', at(0).toISOString(), 'staff']);
    expect(rows[1]?.[8]).toBe('doc "security", v2\nline two');
    expect(rows[3]?.[9]).toBe('{"note":"a,b"}');
  });

  it('neutralises cells a spreadsheet would run as formulas', () => {
    const rows = parseCsv(exportAudit(db, {}, 'csv'));
    expect(rows[2]?.[4]).toBe(`'=HYPERLINK("http://evil")`);
    expect(rows[2]?.[6]).toBe("'+cmd");
    expect(rows[2]?.[8]).toBe("'@SUM(A1)");
    expect(rows[3]?.[8]).toBe("'-2+3");
    expect(rows[3]?.[5]).toBe("'\t198.51.100.9");
    expect(rows[4]?.[8]).toBe("'\rcr");
  });

  it('writes JSON that parses, oldest first, with ISO times and hashes', () => {
    const entries = JSON.parse(exportAudit(db, {}, 'json'));
    expect(entries).toHaveLength(4);
    expect(entries[0]).toMatchObject({ id: 1, at: at(0).toISOString(), actorType: 'staff', target: 'doc "security", v2\nline two' });
    expect(entries[1].prevHash).toBe(entries[0].hash);
    expect(entries[2].summary).toEqual({ note: 'a,b' });
  });

  it('applies the filter, and exports an empty log as a header or an empty array', () => {
    expect(JSON.parse(exportAudit(db, { action: 'audit.viewed' }, 'json'))).toHaveLength(1);
    expect(JSON.parse(exportAudit(db, { actorId: 99 }, 'json'))).toEqual([]);
    expect(parseCsv(exportAudit(db, { from: at(10) }, 'csv'))).toHaveLength(1);
  });

  it('pages through more entries than one page', () => {
    for (let i = 0; i < 2500; i++) recordAudit(db, { actor: { type: 'system' }, action: 'audit.viewed' }, at(4));
    const entries: { id: number }[] = JSON.parse(exportAudit(db, {}, 'json'));
    expect(entries).toHaveLength(2504);
    expect(entries.map((e) => e.id)).toEqual(Array.from({ length: 2504 }, (_, i) => i + 1));
  });
});
