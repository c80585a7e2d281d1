/**
 * Markup that would run, link or mention if an output passed it through:
 * `body` is what a person types, `visible` what a reader must see of it as
 * text. The unit tests render it through every channel's formatter
 * (tests/unit/incident-messages.test.ts); the security suite sends it
 * through the running server into every page, email, Slack message, SMS,
 * feed and JSON document (tests/security/injection.test.ts).
 */
export const XSS: { name: string; body: string; visible: string }[] = [
  { name: 'script tag', body: '<script>alert(1)</script>', visible: '<script>alert(1)</script>' },
  { name: 'img onerror', body: '<img src=x onerror=alert(1)>', visible: '<img src=x onerror=alert(1)>' },
  { name: 'javascript: link', body: '[click](javascript:alert(1))', visible: '[click](javascript:alert(1))' },
  { name: 'mixed-case javascript: link', body: '[click](JaVaScRiPt:alert(1))', visible: '[click](JaVaScRiPt:alert(1))' },
  {
    name: 'data: link',
    body: '[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
    visible: '[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  },
  { name: 'data: image', body: '![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)', visible: '![x](data:image/svg+xml' },
  { name: 'raw anchor', body: '<a href="https://evil.example">win</a>', visible: '<a href="https://evil.example">win</a>' },
  { name: 'attribute breakout', body: '"><svg onload=alert(1)>', visible: '"><svg onload=alert(1)>' },
  { name: 'javascript: autolink', body: '<javascript:alert(1)>', visible: '<javascript:alert(1)>' },
  { name: 'entity-encoded script', body: '&lt;script&gt;alert(1)&lt;/script&gt;', visible: '<script>alert(1)</script>' },
  { name: 'numeric entities', body: '&#60;img src=x onerror=alert(1)&#62;', visible: '<img src=x onerror=alert(1)>' },
  { name: 'link title breakout', body: '[x](https://ok.example "a\\" onmouseover=\\"alert(1))', visible: 'x' },
  { name: 'Slack mentions', body: 'Heads up <!channel> <!here> <@U123> <#C999>', visible: 'Heads up <!channel> <!here> <@U123> <#C999>' },
  {
    name: 'Slack link syntax',
    body: '<https://evil.example|https://good.example>',
    visible: '<https://evil.example|https://good.example>',
  },
  { name: 'bold injection', body: '*bold* **strong** and a literal \\*star\\*', visible: 'bold' },
  { name: 'html comment and style', body: '<!-- x --><style>body{display:none}</style>', visible: '<style>body{display:none}</style>' },
];
