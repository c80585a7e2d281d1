import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ContentError } from '../../src/core/content/errors.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { copyContent, editText, editYaml } from '../helpers/content-fixture.ts';
import { ROOT } from '../helpers/server.ts';

type Row = Record<string, unknown>;

function problemsOf(contentDir: string): string[] {
  try {
    loadContent(contentDir);
  } catch (err) {
    if (err instanceof ContentError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('the demo content', () => {
  it('is valid and complete', () => {
    const content = loadContent(join(ROOT, 'content'));
    expect(content.docs.length).toBeGreaterThanOrEqual(15);
    expect(content.subprocessors.length).toBeGreaterThanOrEqual(9);
    expect(content.components.length).toBeGreaterThanOrEqual(3);
    const categories = new Set(content.subprocessors.map((s) => s.category));
    for (const needed of ['database', 'cdn', 'infrastructure', 'search', 'payments', 'ai', 'email', 'sms', 'chat']) {
      expect(categories, `a subprocessor of category ${needed}`).toContain(needed);
    }
    const inSections = new Set(content.site.sections.flatMap((s) => s.docs));
    for (const doc of content.docs) expect(inSections, `${doc.slug} listed in a section`).toContain(doc.slug);
  });
});

describe('content validation names the file and the field', () => {
  it('refuses an update template with a placeholder nothing fills, or a missing one the scheduler sends', () => {
    const dir = copyContent();
    editText(dir, 'templates/identified.md', (t) => t.replace('We have identified', 'Dear {{customer}}, we have identified'));
    rmSync(join(dir, 'templates/maintenance-started.md'));
    editText(dir, 'templates/resolved.md', (t) => t.replace('kinds: [outage, security]', 'kinds: [outages]'));
    const problems = problemsOf(dir);
    expect(problems).toContainEqual(
      expect.stringMatching(/^content\/templates\/identified\.md: unknown placeholder \{\{customer\}\} \(known: \{\{organisation\}\}/),
    );
    expect(problems).toContainEqual('content/templates/maintenance-started.md: missing (scheduled maintenance sends it automatically)');
    expect(problems).toContainEqual(expect.stringMatching(/^content\/templates\/resolved\.md: kinds\[0\]: /));
  });

  it('refuses a subprocessor missing a required field', () => {
    const dir = copyContent();
    editYaml<Row[]>(dir, 'subprocessors.yaml', (rows) => {
      delete rows[1]?.entity;
    });
    expect(problemsOf(dir)).toContainEqual(expect.stringMatching(/^content\/subprocessors\.yaml: \[1\]\.entity: /));
  });

  it('refuses a location that is not an ISO country code or a known region, naming the entry and the field', () => {
    const dir = copyContent();
    editYaml<Row[]>(dir, 'subprocessors.yaml', (rows) => {
      if (rows[0]) rows[0].countries = ['US', 'Germany', 'XX'];
      if (rows[1]) rows[1].countries = ['UK', 'de'];
      if (rows[2]) rows[2].regions = ['europe'];
      if (rows[3]) rows[3].countries = ['US', 'NL', 'US'];
      if (rows[4]) {
        delete rows[4].countries;
        delete rows[4].regions;
      }
      if (rows[5]) rows[5].location = 'United States';
    });
    const problems = problemsOf(dir);
    expect(problems).toContainEqual(
      'content/subprocessors.yaml: [0].countries[1]: "Germany" is not an ISO 3166-1 alpha-2 country code: write DE',
    );
    expect(problems).toContainEqual(
      'content/subprocessors.yaml: [0].countries[2]: "XX" is not an ISO 3166-1 alpha-2 country code (such as DE, IE, US)',
    );
    expect(problems).toContainEqual(
      'content/subprocessors.yaml: [1].countries[0]: "UK" is not an ISO 3166-1 alpha-2 country code: write GB',
    );
    expect(problems).toContainEqual(
      'content/subprocessors.yaml: [1].countries[1]: "de" is not an ISO 3166-1 alpha-2 country code: write DE',
    );
    expect(problems).toContainEqual('content/subprocessors.yaml: [2].regions[0]: must be one of eea, worldwide');
    expect(problems).toContainEqual('content/subprocessors.yaml: [3].countries[2]: lists US twice');
    expect(problems).toContainEqual(
      'content/subprocessors.yaml: [4].countries: name where it processes data: countries (ISO 3166-1 alpha-2 codes such as DE, US) or regions (eea, worldwide)',
    );
    expect(problems).toContainEqual(
      'content/subprocessors.yaml: [5].location: is replaced by countries (ISO 3166-1 alpha-2 codes such as DE, US) and regions (eea, worldwide)',
    );
  });

  it('refuses a field of the wrong type', () => {
    const dir = copyContent();
    editYaml<Row[]>(dir, 'subprocessors.yaml', (rows) => {
      if (rows[0]) rows[0].dataCategories = 'email addresses';
    });
    expect(problemsOf(dir)).toContainEqual(expect.stringMatching(/^content\/subprocessors\.yaml: \[0\]\.dataCategories: /));
  });

  it('refuses a DPA link that is not https', () => {
    const dir = copyContent();
    editYaml<Row[]>(dir, 'subprocessors.yaml', (rows) => {
      if (rows[2]) rows[2].dpaUrl = 'http://example.com/dpa';
    });
    expect(problemsOf(dir)).toContainEqual('content/subprocessors.yaml: [2].dpaUrl: must be an https:// URL');
  });

  it('refuses a duplicate subprocessor id', () => {
    const dir = copyContent();
    editYaml<Row[]>(dir, 'subprocessors.yaml', (rows) => [...rows, { ...rows[0] }]);
    const problems = problemsOf(dir);
    expect(problems.join('\n')).toMatch(/content\/subprocessors\.yaml: \[\d+\]\.id: duplicate id "[a-z0-9-]+" \(also at \[0\]\)/);
  });

  it('refuses a duplicate component id and an unknown key', () => {
    const dir = copyContent();
    editYaml<Row[]>(dir, 'components.yaml', (rows) => [...rows, { ...rows[0], colour: 'red' }]);
    const problems = problemsOf(dir);
    expect(problems.join('\n')).toMatch(/content\/components\.yaml: \[\d+\]: Unrecognized key: "colour"/);
  });

  it('refuses two spellings of one group and a group name without letters', () => {
    const dir = copyContent();
    editYaml<Row[]>(dir, 'components.yaml', (rows) => [
      ...rows.slice(0, 3),
      rows[3] as Row,
      { ...rows[4], group: 'core' },
      { ...rows[5], group: '!!' },
      ...rows.slice(6),
    ]);
    const problems = problemsOf(dir).join('\n');
    expect(problems).toContain('content/components.yaml: [4].group: "core" and "Core" would both have the group id "core"');
    expect(problems).toContain('content/components.yaml: [5].group: must contain a letter or digit');
  });

  it('refuses a section that names a doc that does not exist', () => {
    const dir = copyContent();
    editYaml<{ sections: { docs: string[] }[] }>(dir, 'site.yaml', (site) => {
      site.sections[0]?.docs.push('no-such-doc');
    });
    expect(problemsOf(dir)).toContainEqual(
      expect.stringMatching(/^content\/site\.yaml: sections\[0\]\.docs\[\d+\]: unknown doc "no-such-doc"/),
    );
  });

  it('refuses a compliance badge linking to a missing doc, and a bad status', () => {
    const dir = copyContent();
    editYaml<{ compliance: Row[] }>(dir, 'site.yaml', (site) => {
      if (site.compliance[0]) site.compliance[0].doc = 'missing';
      if (site.compliance[1]) site.compliance[1].status = 'done';
    });
    const problems = problemsOf(dir);
    expect(problems.join('\n')).toMatch(/content\/site\.yaml: compliance\[1\]\.status: /);
  });

  it('refuses policy numbers of the wrong type', () => {
    const dir = copyContent();
    editYaml<{ policies: { breachClocks: Row } }>(dir, 'site.yaml', (site) => {
      site.policies.breachClocks.notifyHours = 'three days';
    });
    expect(problemsOf(dir)).toContainEqual(expect.stringMatching(/^content\/site\.yaml: policies\.breachClocks\.notifyHours: /));
  });

  it('refuses a backup time that is not UTC HH:MM and a number of backups below one, saying what is expected', () => {
    const dir = copyContent();
    editYaml<{ policies: { backups: Row } }>(dir, 'site.yaml', (site) => {
      site.policies.backups.time = '2:30am';
      site.policies.backups.keep = 0;
      site.policies.backups.enabled = 'yes';
    });
    const problems = problemsOf(dir);
    expect(problems).toContain('content/site.yaml: policies.backups.time: must be a UTC time as HH:MM (00:00 to 23:59), such as "02:30"');
    expect(problems).toContain('content/site.yaml: policies.backups.keep: must keep at least 1 backup');
    expect(problems).toContain('content/site.yaml: policies.backups.enabled: must be true or false');
  });

  it('backs up daily at 02:30 UTC into the data dir, keeping 14, when site.yaml says nothing about backups', () => {
    const dir = copyContent();
    editYaml<{ policies: Row }>(dir, 'site.yaml', (site) => {
      delete site.policies.backups;
    });
    expect(loadContent(dir).site.policies.backups).toEqual({ enabled: true, time: '02:30', keep: 14, directory: 'backups' });
  });

  it('refuses a doc without a title and a doc relating to an unknown doc', () => {
    const dir = copyContent();
    editText(dir, 'docs/encryption.md', (text) => text.replace(/^title:.*$/m, ''));
    editText(dir, 'docs/compliance.md', (text) => text.replace(/^related:(\n {2}- .*)*$/m, 'related: [privacy, ghost-page]'));
    const problems = problemsOf(dir);
    expect(problems).toContainEqual(expect.stringMatching(/^content\/docs\/encryption\.md: title: /));
    expect(problems).toContainEqual(expect.stringMatching(/^content\/docs\/compliance\.md: related\[1\]: unknown doc "ghost-page"/));
    expect(problems.join('\n')).not.toMatch(/unknown doc "encryption"/);
  });

  it('refuses a doc with a bad date and one without frontmatter', () => {
    const dir = copyContent();
    editText(dir, 'docs/privacy.md', (text) => text.replace(/^updated:.*$/m, 'updated: last tuesday'));
    writeFileSync(join(dir, 'docs/stray-note.md'), '# Just a heading\n');
    const problems = problemsOf(dir);
    expect(problems).toContainEqual('content/docs/privacy.md: updated: must be a date (YYYY-MM-DD)');
    expect(problems).toContainEqual('content/docs/stray-note.md: must start with a frontmatter block between --- lines');
  });

  it('refuses YAML that does not parse, and a missing file', () => {
    const dir = copyContent();
    writeFileSync(join(dir, 'components.yaml'), '- id: api\n  name: [unclosed\n');
    rmSync(join(dir, 'subprocessors.yaml'));
    const problems = problemsOf(dir);
    expect(problems).toContainEqual(expect.stringMatching(/^content\/components\.yaml: not valid YAML: /));
    expect(problems).toContainEqual('content/subprocessors.yaml: cannot be read (ENOENT)');
  });

  it('refuses security.txt fields that are malformed', () => {
    const dir = copyContent();
    editYaml<{ securityTxt: Row; contacts: { security: Row } }>(dir, 'site.yaml', (site) => {
      site.securityTxt.preferredLanguages = ['English!'];
      site.contacts.security.email = 'not-an-address';
    });
    const problems = problemsOf(dir);
    expect(problems).toContainEqual(expect.stringMatching(/^content\/site\.yaml: securityTxt\.preferredLanguages\[0\]: /));
    expect(problems).toContainEqual('content/site.yaml: contacts.security.email: must be an email address');
  });
});
