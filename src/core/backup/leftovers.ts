/**
 * Plaintext copies of the database that a crash (power cut, kill -9, a full
 * disk) left in the data dir: a backup's snapshot (`.candor-backup-<uuid>.db`,
 * backup.ts), a restore's staged file (`.candor-restore-<uuid>.db`,
 * restore.ts) and a restore check's folder (`.candor-restore-check-XXXXXX`,
 * check.ts), each with SQLite's `-journal`/`-wal`/`-shm` companions; and a
 * subscriber import's uploaded file (`.candor-upload-XXXXXX`, src/lib/multipart.ts:
 * addresses in clear). Each is
 * removed by the run that made it, whatever happens, unless the process dies
 * first; then it would stay, readable by whoever reads the data dir, until
 * someone noticed. The server sweeps them at start and before each scheduled
 * backup.
 *
 * Only names exactly as Candor makes them are touched (a file a person named
 * `.candor-backup-old.db` stays), of the kind Candor makes (a file, or for the
 * check a folder; never a symbolic link). A run may still be going in another
 * process (`candor backup` beside the server, a second node's check), so an
 * entry is removed only when both hold:
 *  - no process this user can see has it (or, for a folder, anything in it)
 *    open: a live run holds its copy open while it writes, encrypts or
 *    verifies it, and opens it again within moments between steps;
 *  - it has not been written for 10 minutes: covers those moments between
 *    steps (each follows a write), and processes /proc does not show.
 * Where open files cannot be listed (no /proc: macOS), the age alone decides,
 * and it is a day: longer than any backup or check takes.
 */
import { lstatSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { join, sep } from 'node:path';

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
/** backup.ts's snapshot and restore.ts's staged file, with SQLite's companions */
const LEFTOVER_FILE = new RegExp(`^\\.candor-(?:backup|restore)-${UUID}\\.db(?:-journal|-wal|-shm)?$`);
/** check.ts's scratch folder and an import's upload folder: mkdtemp's six letters and digits */
const LEFTOVER_FOLDER = /^\.candor-(?:restore-check|upload)-[A-Za-z0-9]{6}$/;

/** Unwritten this long, and held by no process, an entry is a leftover. */
export const LEFTOVER_AGE_MS = 10 * 60_000;
/** Without a list of open files, the age alone decides. */
export const LEFTOVER_AGE_UNSEEN_MS = 24 * 3_600_000;

/** The names in `dir` that some process of this user has open (or has something open inside), or null where that cannot be listed. */
function heldNames(dir: string): Set<string> | null {
  let pids: string[];
  try {
    readdirSync('/proc/self/fd');
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return null;
  }
  const names = new Set<string>();
  const prefix = dir + sep;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // another user's process, or one that has exited
    }
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith(prefix)) names.add(target.slice(prefix.length).split(sep)[0] ?? '');
      } catch {
        // closed meanwhile
      }
    }
  }
  return names;
}

/** When the entry (a folder: it or anything in it) was last written. */
function lastWritten(path: string, folder: boolean): number {
  let newest = lstatSync(path).mtimeMs;
  if (folder) {
    for (const entry of readdirSync(path, { withFileTypes: true, recursive: true })) {
      newest = Math.max(newest, lstatSync(join(entry.parentPath, entry.name)).mtimeMs);
    }
  }
  return newest;
}

/**
 * Removes the leftovers in `dataDir` (see above), logging one line per removal with the entry's name.
 * Returns the names removed. Never throws: a sweep that cannot read the folder says so and removes nothing.
 * `now` is the real clock by default: it is compared with the file system's times.
 */
export function sweepLeftovers(dataDir: string, log: (line: string) => void, now: Date = new Date()): string[] {
  const removed: string[] = [];
  let names: string[];
  let dir: string;
  try {
    dir = realpathSync(dataDir);
    names = readdirSync(dir).filter((name) => LEFTOVER_FILE.test(name) || LEFTOVER_FOLDER.test(name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      log(`leftover copies not looked for in ${dataDir}: ${err instanceof Error ? err.message : String(err)}`);
    }
    return removed;
  }
  if (names.length === 0) return removed;
  const held = heldNames(dir);
  const age = held === null ? LEFTOVER_AGE_UNSEEN_MS : LEFTOVER_AGE_MS;
  for (const name of names) {
    const path = join(dir, name);
    try {
      const stat = lstatSync(path);
      const folder = LEFTOVER_FOLDER.test(name);
      if (folder ? !stat.isDirectory() : !stat.isFile()) continue;
      if (held?.has(name)) continue;
      if (now.getTime() - lastWritten(path, folder) < age) continue;
      rmSync(path, { recursive: folder, force: true });
      removed.push(name);
      log(`removed a plaintext copy left by a run that did not finish: ${name}`);
    } catch (err) {
      log(`could not remove ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return removed;
}
