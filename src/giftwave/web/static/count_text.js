// A count in words for a number the page learns after it was drawn (a share made now, a
// follow): the server translates the words for one sample number of each plural category of
// the page's language; the form shown is the one whose sample is in the count's category.
import { fmt, locale } from "/static/site.js";

const rules = new Intl.PluralRules(locale);

export function countText(samples, n) {
  const category = rules.select(n);
  const entries = Object.entries(samples || {});
  const found = entries.find(([sample]) => rules.select(Number(sample)) === category);
  const text = (found || entries.at(-1) || ["", "{n}"])[1];
  return text.replace("{n}", fmt(n));
}
