/**
 * Incident updates are markdown written by staff and read by customers in
 * browsers, mail clients, Slack and SMS. markdown-it with `html: false` is
 * safe by construction: raw HTML in the source is never parsed as markup,
 * only shown as text, so there is nothing to sanitise after the fact. On top
 * of that: only http, https and mailto links exist (anything else stays
 * literal text), images become links (an update has no business loading
 * third-party images into an email), headings are demoted below the page's
 * own, and links carry `rel="nofollow noopener noreferrer"`.
 *
 * One parse feeds three renderings: HTML (page and email), plain text (email
 * text part, SMS, webhooks) and Slack mrkdwn.
 */
import MarkdownIt, { type Token } from 'markdown-it';
import { escapeSlack } from '../text/escape.ts';

export const LINK_REL = 'nofollow noopener noreferrer';

/** The schemes a link may have; checked on the normalised (percent-encoded) URL markdown-it hands over. */
const ALLOWED_LINK = /^(?:https?:\/\/|mailto:)/i;

type TokenClass = new (type: string, tag: string, nesting: -1 | 0 | 1) => Token;

const md = new MarkdownIt('default', {
  html: false,
  linkify: true,
  typographer: false,
  breaks: false,
  // `<br />`, `<hr />`: the output is well-formed XML too, which lets tests parse it strictly
  xhtmlOut: true,
});

// An allowlist rather than markdown-it's default blocklist (javascript:, vbscript:, file:, data:):
// relative links do not work in an email, and an unknown scheme is no better than a known bad one.
md.validateLink = (url: string): boolean => ALLOWED_LINK.test(url.trim());

/** `#` (h1) becomes h3, and so on down to h6: the page and the email own h1 and h2. */
function demote(tag: string): string {
  const level = Number(tag.slice(1));
  return `h${Math.min(6, level + 2)}`;
}

/** Link tokens around `children`, carrying our rel. */
function linkTokens(TokenCtor: TokenClass, href: string, title: string | null, children: Token[]): Token[] {
  const open = new TokenCtor('link_open', 'a', 1);
  open.attrs = [['href', href]];
  if (title) open.attrs.push(['title', title]);
  open.attrs.push(['rel', LINK_REL]);
  const close = new TokenCtor('link_close', 'a', -1);
  return [open, ...children, close];
}

/** Images become links labelled with their alt text; links get our rel. An image inside a link keeps only its text (no nested <a>). */
function rewriteInline(children: Token[], TokenCtor: TokenClass): Token[] {
  const out: Token[] = [];
  let linkDepth = 0;
  for (const token of children) {
    if (token.type === 'link_open') {
      linkDepth += 1;
      token.attrSet('rel', LINK_REL);
      out.push(token);
    } else if (token.type === 'link_close') {
      linkDepth -= 1;
      out.push(token);
    } else if (token.type === 'image') {
      const src = String(token.attrGet('src') ?? '');
      const alt = token.children && token.children.length > 0 ? rewriteInline(token.children, TokenCtor) : [];
      if (linkDepth > 0) {
        out.push(...alt);
        continue;
      }
      const label = alt.length > 0 ? alt : [Object.assign(new TokenCtor('text', '', 0), { content: src })];
      const title = token.attrGet('title');
      out.push(...linkTokens(TokenCtor, src, title === null ? null : String(title), label));
    } else {
      out.push(token);
    }
  }
  return out;
}

md.core.ruler.push('candor_safety', (state) => {
  for (const token of state.tokens) {
    if (token.type === 'heading_open' || token.type === 'heading_close') token.tag = demote(token.tag);
    if (token.type === 'inline' && token.children) token.children = rewriteInline(token.children, state.Token);
  }
});

/** The index of the token that closes the one opened at `start`. */
function closing(tokens: Token[], start: number): number {
  let depth = 0;
  for (let i = start; i < tokens.length; i++) {
    const nesting = tokens[i]?.nesting ?? 0;
    depth += nesting;
    if (depth === 0) return i;
  }
  return tokens.length - 1;
}

/** How the block walker writes one flavour of plain-ish text. */
interface Flavour {
  inline(children: Token[]): string;
  heading(text: string): string;
  code(content: string): string;
  bullet: string;
}

function prefixLines(text: string, first: string, rest: string): string {
  return text
    .split('\n')
    .map((line, i) => (i === 0 ? first : rest) + line)
    .join('\n');
}

function blocks(tokens: Token[], start: number, end: number, flavour: Flavour): string[] {
  const out: string[] = [];
  let i = start;
  while (i < end) {
    const token = tokens[i];
    if (!token) break;
    switch (token.type) {
      case 'paragraph_open':
      case 'heading_open': {
        const close = closing(tokens, i);
        const inline = tokens.slice(i + 1, close).find((t) => t.type === 'inline');
        const text = flavour.inline(inline?.children ?? []);
        if (text) out.push(token.type === 'heading_open' ? flavour.heading(text) : text);
        i = close + 1;
        break;
      }
      case 'bullet_list_open':
      case 'ordered_list_open': {
        const close = closing(tokens, i);
        const ordered = token.type === 'ordered_list_open';
        let number = Number(token.attrGet('start') ?? 1);
        const items: string[] = [];
        let j = i + 1;
        while (j < close) {
          const item = tokens[j];
          if (item?.type !== 'list_item_open') {
            j += 1;
            continue;
          }
          const itemClose = closing(tokens, j);
          const marker = ordered ? `${number}. ` : flavour.bullet;
          number += 1;
          const body = blocks(tokens, j + 1, itemClose, flavour).join('\n');
          items.push(prefixLines(body, marker, ' '.repeat(marker.length)));
          j = itemClose + 1;
        }
        out.push(items.join('\n'));
        i = close + 1;
        break;
      }
      case 'blockquote_open': {
        const close = closing(tokens, i);
        out.push(prefixLines(blocks(tokens, i + 1, close, flavour).join('\n\n'), '> ', '> '));
        i = close + 1;
        break;
      }
      case 'table_open': {
        const close = closing(tokens, i);
        const rows: string[] = [];
        let cells: string[] = [];
        for (let j = i + 1; j < close; j++) {
          const t = tokens[j];
          if (t?.type === 'inline') cells.push(flavour.inline(t.children ?? []));
          if (t?.type === 'tr_close') {
            rows.push(cells.join(' | '));
            cells = [];
          }
        }
        out.push(rows.join('\n'));
        i = close + 1;
        break;
      }
      case 'fence':
      case 'code_block':
        out.push(flavour.code(token.content.replace(/\n$/, '')));
        i += 1;
        break;
      case 'hr':
        out.push('---');
        i += 1;
        break;
      default:
        // html_block cannot occur with `html: false`; anything else unknown is shown as the text it carries
        if (token.nesting === 1) {
          const close = closing(tokens, i);
          out.push(...blocks(tokens, i + 1, close, flavour));
          i = close + 1;
        } else {
          if (token.content) out.push(token.content);
          i += 1;
        }
    }
  }
  return out;
}

/** "label (url)", or just the address when the label says the same. */
function linkAsText(label: string, href: string): string {
  if (`mailto:${label}` === href) return label;
  if (!label || label === href || `http://${label}` === href || `https://${label}` === href) return href;
  return `${label} (${href})`;
}

/** How one flavour writes inline text: the walk over markdown-it's inline tokens is shared. */
interface InlineWriter {
  text(content: string): string;
  code(content: string): string;
  /** the character for an emphasis token (`strong`, `em`, `s`), or '' where the flavour has none */
  mark(base: string): string;
  link(label: string, href: string): string;
}

function inlineWith(writer: InlineWriter): (children: Token[]) => string {
  const walk = (children: Token[]): string => {
    let out = '';
    const links: { href: string; from: number }[] = [];
    for (const token of children) {
      switch (token.type) {
        case 'text':
        case 'html_inline':
          out += writer.text(token.content);
          break;
        case 'code_inline':
          out += writer.code(token.content);
          break;
        case 'softbreak':
        case 'hardbreak':
          out += '\n';
          break;
        case 'link_open':
          links.push({ href: String(token.attrGet('href') ?? ''), from: out.length });
          break;
        case 'link_close': {
          const link = links.pop();
          if (link) out = out.slice(0, link.from) + writer.link(out.slice(link.from), link.href);
          break;
        }
        default:
          if (/_(open|close)$/.test(token.type)) out += writer.mark(token.type.replace(/_(open|close)$/, ''));
          else if (token.children) out += walk(token.children);
      }
    }
    return out;
  };
  return walk;
}

const plain: Flavour = {
  inline: inlineWith({ text: (t) => t, code: (t) => t, mark: () => '', link: linkAsText }),
  heading: (text) => text,
  code: (content) => content,
  bullet: '- ',
};

/** Slack escaping lives with the other escapes (text/escape.ts); kept here for the renderers that import it. */
export { escapeSlack };

/** A URL inside `<url|label>`: `|` and `>` would end it early. */
export function slackUrl(href: string): string {
  return escapeSlack(href.replaceAll('|', '%7C'));
}

const SLACK_MARKS: Record<string, string> = { strong: '*', em: '_', s: '~' };

const slackInline = inlineWith({
  text: escapeSlack,
  // a backtick cannot be escaped inside Slack code; the span ends there, nothing worse
  code: (content) => `\`${escapeSlack(content)}\``,
  mark: (base) => SLACK_MARKS[base] ?? '',
  link: (label, href) => {
    const url = slackUrl(href);
    const text = label.replaceAll('\n', ' ');
    return `<${url}${text && text !== url ? `|${text}` : ''}>`;
  },
});

const slack: Flavour = {
  inline: slackInline,
  heading: (text) => `*${text}*`,
  code: (content) => `\`\`\`\n${escapeSlack(content)}\n\`\`\``,
  bullet: '• ',
};

export interface RenderedMarkdown {
  /** safe HTML: no raw HTML from the source, links http(s)/mailto only, no images */
  html: string;
  /** plain text: links as "label (url)" */
  text: string;
}

export function renderMarkdown(source: string): RenderedMarkdown {
  const env = {};
  const tokens = md.parse(source, env);
  return {
    html: md.renderer.render(tokens, md.options, env),
    text: blocks(tokens, 0, tokens.length, plain).join('\n\n').trim(),
  };
}

/** Slack mrkdwn of the markdown, every piece of user text escaped; meant for a text object with `verbatim: true`. */
export function renderSlackMrkdwn(source: string): string {
  const tokens = md.parse(source, {});
  return blocks(tokens, 0, tokens.length, slack).join('\n\n').trim();
}
