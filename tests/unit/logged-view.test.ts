/**
 * Logged messages read as their channel shows them: links found in text,
 * Slack mrkdwn read into marks and links, an SMS exactly as sent with its
 * segments, and a stored email's HTML reduced to inert structure.
 */
import { describe, expect, it } from 'vitest';
import { linkify, loggedView, slackRuns } from '../../src/core/notify/logged-view.ts';
import { countSegments, fitSms } from '../../src/core/notify/sms.ts';

describe('linkify', () => {
  it('makes http(s) links of URLs and leaves the sentence’s punctuation outside', () => {
    expect(linkify('See https://status.example/incidents/7. Or http://a.example/x?y=1, then stop')).toEqual([
      { text: 'See ' },
      { text: 'https://status.example/incidents/7', href: 'https://status.example/incidents/7' },
      { text: '. Or ' },
      { text: 'http://a.example/x?y=1', href: 'http://a.example/x?y=1' },
      { text: ', then stop' },
    ]);
  });
  it('keeps brackets that belong to the link', () => {
    expect(linkify('(see https://a.example/wiki/X_(y)) and https://a.example/u/[hidden].')).toEqual([
      { text: '(see ' },
      { text: 'https://a.example/wiki/X_(y)', href: 'https://a.example/wiki/X_(y)' },
      { text: ') and ' },
      { text: 'https://a.example/u/[hidden]', href: 'https://a.example/u/[hidden]' },
      { text: '.' },
    ]);
  });
  it('never links another scheme', () => {
    expect(linkify('javascript:alert(1) data:text/html,x')).toEqual([{ text: 'javascript:alert(1) data:text/html,x' }]);
  });
});

describe('slackRuns', () => {
  it('reads links, bold, italics, code and strike-through, and Slack’s escapes', () => {
    expect(slackRuns('*Major outage* on _API_: `502` ~maybe~ &lt;b&gt; &amp; <https://s.example/i/7|Follow &amp; see>')).toEqual([
      { text: 'Major outage', mark: 'strong' },
      { text: ' on ' },
      { text: 'API', mark: 'em' },
      { text: ': ' },
      { text: '502', mark: 'code' },
      { text: ' ' },
      { text: 'maybe', mark: 'del' },
      { text: ' <b> & ' },
      { text: 'Follow & see', href: 'https://s.example/i/7' },
    ]);
  });
  it('a link to anything but http(s) stays text', () => {
    expect(slackRuns('<javascript:alert(1)|click>')).toEqual([{ text: 'click' }]);
  });
});

describe('loggedView', () => {
  it('an SMS is shown as the Twilio channel sends it, with its length and segments', () => {
    const body = 'Lumenwork - Major outage: API errors (Investigating). '.repeat(8);
    const link = 'https://status.lumenwork.example/incidents/12';
    const view = loggedView('sms', { body, link });
    const sent = fitSms(body, link);
    expect(view).toEqual({ channel: 'sms', text: sent, runs: linkify(sent), segments: countSegments(sent), characters: [...sent].length });
    expect(view.channel === 'sms' && view.segments.segments).toBe(2);
    expect(sent.endsWith(link)).toBe(true);
  });

  it('an email keeps its structure and links, and loses scripts, styles, images and handlers', () => {
    const view = loggedView('email', {
      subject: 'Outage',
      text: 'Read https://s.example/i/1',
      headers: { 'List-Unsubscribe': '<https://s.example/unsubscribe/x>' },
      html: '<h1>Title</h1><p style="color:red" onclick="alert(1)">Hi <a href="https://s.example/i/1" onmouseover="x()">page</a> <a href="javascript:alert(2)">bad</a></p><script>alert(3)</script><img src="https://evil.example/t.gif"><iframe src="https://evil.example"></iframe>',
    });
    if (view.channel !== 'email') throw new Error('not an email view');
    expect(view.html).toBe(
      '<h3>Title</h3><p>Hi <a href="https://s.example/i/1" rel="noreferrer noopener">page</a> <a rel="noreferrer noopener">bad</a></p>',
    );
    expect(view.headers).toEqual([['List-Unsubscribe', '<https://s.example/unsubscribe/x>']]);
    expect(view.text).toContainEqual({ text: 'https://s.example/i/1', href: 'https://s.example/i/1' });
  });

  it('Slack blocks become header, sections and context, with the thread root’s edit', () => {
    const view = loggedView('slack', {
      text: 'fallback',
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: 'API errors' } },
        { type: 'section', text: { type: 'mrkdwn', text: '*Investigating*' } },
        { type: 'context', elements: [{ type: 'mrkdwn', text: '<https://s.example/i/1|Status page>' }] },
      ],
      root: { text: 'root', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'Resolved' } }] },
    });
    expect(view).toEqual({
      channel: 'slack',
      fallback: 'fallback',
      blocks: [
        { kind: 'header', runs: [{ text: 'API errors' }] },
        { kind: 'section', runs: [{ text: 'Investigating', mark: 'strong' }] },
        { kind: 'context', runs: [{ text: 'Status page', href: 'https://s.example/i/1' }] },
      ],
      root: [{ kind: 'section', runs: [{ text: 'Resolved' }] }],
    });
  });

  it('a webhook is its JSON, and an unexpected payload is shown as JSON too', () => {
    expect(loggedView('webhook', { type: 'incident.updated', data: { id: 1 } })).toEqual({
      channel: 'webhook',
      json: JSON.stringify({ type: 'incident.updated', data: { id: 1 } }, null, 2),
    });
    expect(loggedView('email', { unexpected: true })).toEqual({ channel: 'other', json: JSON.stringify({ unexpected: true }, null, 2) });
  });
});
