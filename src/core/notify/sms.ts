/**
 * SMS length rules: a message in the GSM 03.38 alphabet takes 160
 * characters in one segment or 153 per segment when split; anything else
 * is UCS-2: 70, or 67 per segment (counted in UTF-16 units). Candor keeps
 * every SMS within two segments, always ending with the link to the page.
 */
const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM_EXTENDED = '^{}\\[~]|€\f';
const basic = new Set(GSM_BASIC);
const extended = new Set(GSM_EXTENDED);

export interface SegmentCount {
  encoding: 'GSM-7' | 'UCS-2';
  /** septets for GSM-7, UTF-16 code units for UCS-2 */
  units: number;
  segments: number;
}

export function countSegments(text: string): SegmentCount {
  let septets = 0;
  let gsm = true;
  for (const ch of text) {
    if (basic.has(ch)) septets += 1;
    else if (extended.has(ch)) septets += 2;
    else {
      gsm = false;
      break;
    }
  }
  if (gsm) return { encoding: 'GSM-7', units: septets, segments: septets <= 160 ? 1 : Math.ceil(septets / 153) };
  const units = text.length;
  return { encoding: 'UCS-2', units, segments: units <= 70 ? 1 : Math.ceil(units / 67) };
}

/** The text, shortened with "..." if needed, followed by the link, within `maxSegments`. */
export function fitSms(text: string, link: string, maxSegments = 2): string {
  const compose = (t: string) => (t ? `${t} ${link}` : link);
  const full = compose(text.replace(/\s+/g, ' ').trim());
  if (countSegments(full).segments <= maxSegments) return full;
  const chars = [...text.replace(/\s+/g, ' ').trim()];
  let lo = 0;
  let hi = chars.length;
  // longest prefix that still fits, found by halving
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (countSegments(compose(`${chars.slice(0, mid).join('').trimEnd()}...`)).segments <= maxSegments) lo = mid;
    else hi = mid - 1;
  }
  return compose(lo > 0 ? `${chars.slice(0, lo).join('').trimEnd()}...` : '');
}
