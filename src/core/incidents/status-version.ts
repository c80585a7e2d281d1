/**
 * A fingerprint of everything the public status pages show: it changes when
 * an incident, an update, a postmortem, an edit or a recorded service state
 * is written for a public incident, and when the UTC day turns (the 90-day bars). While an incident
 * is under way it also changes every five minutes, so the time it has
 * lasted and the uptime figures keep up. Pages rendered for one fingerprint
 * are served from memory until it changes, so a surge of readers during an
 * incident costs one render per change, not one per request.
 */
import type { Reader, Tx } from '../../../db/engine/types.ts';
import { type VersionParts, versionParts } from '../../stores/component-states.ts';

export type { VersionParts };

/** How often the pages of an incident under way are rendered afresh, at most. */
export const OPEN_INCIDENT_REFRESH_MS = 5 * 60_000;

/**
 * What the version is made of, read in one statement (src/stores/component-states.ts `versionParts`);
 * `versionOf` adds the time. src/runtime/status-snapshots.ts reads it once per turn of the event loop,
 * or, following changes on PostgreSQL, once per change announced.
 */
export function statusFacts(r: Reader | Tx): Promise<VersionParts> {
  return versionParts(r);
}

export async function statusVersion(r: Reader | Tx, now: Date): Promise<string> {
  return versionOf(await statusFacts(r), now);
}

export function versionOf(parts: VersionParts, now: Date): string {
  const turn = parts.open ? `:${Math.floor(now.getTime() / OPEN_INCIDENT_REFRESH_MS)}` : '';
  const { update, incidents, postmortems, promised, state, revision } = parts;
  return `${update}:${incidents}:${postmortems}:${promised}:${state}:${revision}:${now.toISOString().slice(0, 10)}${turn}`;
}
