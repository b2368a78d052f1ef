// Evaluate a PAC file the way a browser's PAC engine does, for tests/deploy/test_pac.py.
// pac-resolver runs the script in QuickJS with the Netscape PAC helper functions (dnsDomainIs,
// shExpMatch, isInNet ...). Usage: node find_proxy.mjs PACFILE < [[url, host-or-null], ...]
// prints the FindProxyForURL answers as a JSON array, in order.
import { readFileSync } from "node:fs";
import { createPacResolver } from "pac-resolver";
import { QuickJS } from "quickjs-wasi";

const [pacPath] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(0, "utf8"));
const findProxyForURL = createPacResolver(await QuickJS.create(), readFileSync(pacPath, "utf8"));
const answers = [];
for (const [url, host] of cases) {
  answers.push(await findProxyForURL(url, host || undefined));
}
console.log(JSON.stringify(answers));
