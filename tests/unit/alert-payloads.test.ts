/**
 * Alert payloads and their mapping (src/core/alerts): each sender's body is read into notices or
 * refused naming the field; an alert reaches a service by its component label or a service's
 * alerts.match; severity words and the mapping decide the state it sets.
 */
import { describe, expect, it } from 'vitest';
import { componentFor, fingerprintOf, severityOf, statusOf } from '../../src/core/alerts/drafts.ts';
import { readAlertPayload } from '../../src/core/alerts/payloads.ts';
import type { Component } from '../../src/core/content/schema.ts';

const components: Component[] = [
  { id: 'public-api', name: 'Public API', description: 'API', alerts: { match: { service: 'api', env: 'prod' }, autoPublish: false } },
  { id: 'search', name: 'Search', description: 'Search', alerts: { status: 'degraded', severity: 'minor', autoPublish: true } },
  { id: 'web-app', name: 'Web app', description: 'App' },
];

describe('mapping an alert to a service', () => {
  it('by the component or candor_component label, else by every label of a mapping', () => {
    expect(componentFor({ component: 'web-app' }, components)?.id).toBe('web-app');
    expect(componentFor({ candor_component: 'search' }, components)?.id).toBe('search');
    expect(componentFor({ service: 'api', env: 'prod', pod: 'x' }, components)?.id).toBe('public-api');
    // a partial match is no match; a named service that does not exist is none either
    expect(componentFor({ service: 'api' }, components)).toBeNull();
    expect(componentFor({ component: 'billing', service: 'api', env: 'prod' }, components)).toBeNull();
  });

  it('severity from the label (and its usual words), else the mapping, else major; the state from the mapping or the severity', () => {
    const [api, search] = components as [Component, Component];
    expect(severityOf({ severity: 'warning' }, api)).toBe('minor');
    expect(severityOf({ severity: 'CRITICAL' }, api)).toBe('critical');
    expect(severityOf({}, api)).toBe('major');
    expect(severityOf({}, search)).toBe('minor');
    expect(statusOf('critical', api)).toBe('major_outage');
    expect(statusOf('major', api)).toBe('partial_outage');
    expect(statusOf('minor', api)).toBe('degraded');
    expect(statusOf('critical', search)).toBe('degraded');
  });
});

describe('reading payloads', () => {
  const alert = { status: 'firing', labels: { alertname: 'HighErrorRate', service: 'api' }, annotations: { summary: 'Errors' } };
  const alertmanager = {
    version: '4',
    groupKey: '{}:{}',
    status: 'firing',
    receiver: 'candor',
    groupLabels: {},
    commonLabels: { env: 'prod' },
    commonAnnotations: {},
    externalURL: 'http://am:9093',
    alerts: [alert],
  };

  it('Alertmanager: common labels join each alert, and the summary is the annotation', () => {
    const read = readAlertPayload('alertmanager', alertmanager);
    expect(read.ok).toBe(true);
    if (!read.ok) return;
    const [notice] = read.notices;
    expect(notice?.labels).toEqual({ env: 'prod', alertname: 'HighErrorRate', service: 'api' });
    expect(notice?.summary).toBe('Errors');
    expect(fingerprintOf('alertmanager', 'public-api', notice ?? ({} as never))).toBe('alertmanager:public-api:HighErrorRate');
  });

  it('names each bad field by its path', () => {
    const bad = readAlertPayload('alertmanager', { ...alertmanager, version: '3', alerts: [{ ...alert, labels: { n: 1 } }] });
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.errors.map((e) => e.field).sort()).toEqual(['alerts[0].labels.n', 'version']);
    const empty = readAlertPayload('grafana', { status: 'firing', alerts: [] });
    expect(empty.ok ? [] : empty.errors.map((e) => e.field)).toEqual(['alerts']);
    const notObject = readAlertPayload('generic', 'firing');
    expect(notObject.ok ? [] : notObject.errors.map((e) => e.field)).toEqual(['(body)']);
  });

  it('generic: one alert, its component as a label, its fingerprint or title naming it', () => {
    const read = readAlertPayload('generic', { component: 'web-app', status: 'resolved', title: 'Checkout 500s', fingerprint: 'checkout' });
    expect(read.ok && read.notices).toEqual([
      expect.objectContaining({ status: 'resolved', name: 'checkout', labels: { component: 'web-app' } }),
    ]);
  });
});
