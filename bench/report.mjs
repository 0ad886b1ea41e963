// Turns a bench/run.sh run into its report: node bench/report.mjs META RAW OUT.md OUT.jsonl
// META: the run's facts (JSON); RAW: one JSON line per measured (round, case, target).
// Again from a written run: node bench/report.mjs --from RUN.jsonl OUT.md
// Figures are medians over the rounds; a ratio is the median of the per-round ratios (the
// targets ran back to back in each round, under the same background load).
import { readFileSync, writeFileSync } from 'node:fs';

const from = process.argv[2] === '--from';
const [metaPath, rawPath, mdPath, jsonlPath] = from ? [null, process.argv[3], process.argv[4], null] : process.argv.slice(2);
const lines = readFileSync(rawPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const meta = from ? lines.find((l) => l.type === 'meta') : JSON.parse(readFileSync(metaPath, 'utf8'));
const rows = from ? lines.filter((l) => l.type === 'run') : lines;

const median = (xs) => {
  const v = xs.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const sum = (xs) => xs.reduce((a, b) => a + (b || 0), 0);
const of = (c, t) => rows.filter((r) => r.case === c && r.target === t);
const med = (c, t, k) => median(of(c, t).map((r) => r[k]));
// pairRatio: the median over rounds of (case ca on ta) / (case cb on tb) for figure k.
const pairRatios = (ca, ta, cb, tb, k = 'rps') => of(ca, ta).map((r) => {
  const o = rows.find((x) => x.case === cb && x.target === tb && x.round === r.round);
  return o && o[k] && r[k] != null ? r[k] / o[k] : null;
}).filter((x) => x != null);
const pairRatio = (ca, ta, cb, tb, k = 'rps') => median(pairRatios(ca, ta, cb, tb, k));
const ratio = (c, a, b) => pairRatio(c, a, c, b);
const fmtRps = (x) => (x == null ? '—' : x >= 10000 ? `${(x / 1000).toFixed(1)} k` : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const fmtX = (x) => (x == null ? '—' : `${x.toFixed(x >= 10 ? 1 : 2)}×`);
const fmtPct = (x) => (x == null ? '—' : `${(100 * x).toFixed(0)} %`);
const fmtMs = (x) => (x == null ? '—' : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const mib = (kib) => (kib == null ? '—' : (kib / 1024).toFixed(1));
const ok = (b) => (b == null ? '—' : b ? '✓' : '✗');

const targets = Object.keys(meta.targets);
const title = (t) => meta.targets[t].title;
// A BENCH_BASELINE target (an older revision) is shown, never judged against the issue's targets.
const isBaseline = (t) => Boolean(meta.targets[t].baseline);
const lks = targets.filter((t) => t.startsWith('lk-') && !isBaseline(t));
const cases = [...new Set(rows.map((r) => r.case))];
const caseTitle = {
  discovery: 'discovery', jwks: 'JWKS', cc_jwt: 'client_credentials, ES256 JWT',
  cc_jwt_spread: 'client_credentials, ES256 JWT, random tenant of all',
  cc_opaque: 'client_credentials, opaque', introspect: 'introspection (opaque token)',
  refresh: 'refresh rotation', refresh_claims: 'refresh rotation, claims mapped',
  userinfo: 'userinfo', signin: 'sign-in (page + form POST)',
  codeflow: 'code flow with password sign-in (flows/s)',
};
const nodeReference = { cc_jwt: 1200, cc_opaque: 1800, introspect: 2000, discovery: 3000, jwks: 4500 };
const bound = meta.signin_bench?.argon2_per_s;
const errorsOf = (c, t) => sum(of(c, t).map((r) => r.non2xx)) + sum(of(c, t).map((r) => r.socket_errors));

// The issue's targets, judged per Latchkey target.
function judge(c, t) {
  const rps = med(c, t, 'rps');
  const xNode = ratio(c, t, 'node');
  const xCeil = ratio(c, t, 'ceiling');
  const clean = errorsOf(c, t) === 0;
  switch (c) {
    case 'discovery': case 'jwks':
      return { text: '≥ 40 k req/s, ≥ 10× node', met: rps != null && xNode != null ? rps >= 40000 && xNode >= 10 && clean : null };
    case 'cc_jwt':
      return { text: '≥ 15× node, ≥ 80 % of ceiling', met: xNode != null && xCeil != null ? xNode >= 15 && xCeil >= 0.8 && clean : null };
    case 'introspect':
      return { text: '≥ 10× node', met: xNode != null ? xNode >= 10 && clean : null };
    case 'refresh':
      return { text: '≥ 10× node, no reuse-detection error', met: xNode != null ? xNode >= 10 && clean : null };
    case 'signin': {
      const sb = meta.signin_bench;
      return { text: `≥ 90 % of the argon2id bound${sb ? ` (signin-bench: ${sb.ratio_pct.toFixed(1)} %)` : ''}`, met: sb ? sb.ratio_pct >= 90 && sb.failed === 0 && clean : null };
    }
    default:
      return { text: '—', met: null };
  }
}

const out = [];
const p = (s = '') => out.push(s);
const scale = meta.mode === 'scale';
p(scale ? `# Scale benchmark, ${meta.date.slice(0, 10)}` : `# Side-by-side benchmark, ${meta.date.slice(0, 10)}`);
p();
p(`${meta.date}, commit ${meta.commit}, ${meta.cores} cores (${meta.cpu}), Latchkey ${meta.build} build, ${meta.mode} mode. `
  + `${meta.rounds} interleaved round(s) of ${meta.seconds} s per case and target${meta.mode === 'smoke' ? '' : ' after an untimed warm-up round'}; `
  + `wrk ${meta.wrk_version} -t${meta.threads} -c${meta.conns}; code flow and sign-in: ${meta.flow_conc} concurrent browsers (bench/peer/codeflow.mjs). `
  + `Peer: node-oidc-provider ${meta.peer_version} on Node ${meta.node_version}, NODE_ENV=production. Run took ${meta.duration_s} s.`);
if (meta.mode === 'smoke') p('\n**Smoke run: these figures are not judged.**');
p();
p('Targets:');
for (const t of targets) p(`- \`${t}\`: ${title(t)}`);
p();

if (scale) {
  const [a, b] = lks;
  p(`## Small database vs ${meta.load ? `${meta.load.users.toLocaleString('en')} users in ${meta.load.tenants.toLocaleString('en')} tenants` : 'the large database'}`);
  p();
  if (meta.load) p(`Loaded in ${(meta.load.ms / 1000).toFixed(1)} s (SQL with generate_series; one real argon2id hash for every user; every tenant with clients and its own sealed signing keys). Database size after loading: ${meta.load.db_size}.`);
  p();
  p(`| case | ${a} req/s | ${b} req/s | ${b} / ${a} | p99 ${a} ms | p99 ${b} ms | CPU µs/req ${a} | CPU µs/req ${b} | errors | within 10 % |`);
  p('|---|---|---|---|---|---|---|---|---|---|');
  for (const c of cases) {
    const x = ratio(c, b, a);
    p(`| ${caseTitle[c] ?? c} | ${fmtRps(med(c, a, 'rps'))} | ${fmtRps(med(c, b, 'rps'))} | ${fmtPct(x)} | ${fmtMs(med(c, a, 'p99_ms'))} | ${fmtMs(med(c, b, 'p99_ms'))} | ${fmtRps(med(c, a, 'cpu_us_per_req'))} | ${fmtRps(med(c, b, 'cpu_us_per_req'))} | ${errorsOf(c, a) + errorsOf(c, b)} | ${ok(x == null ? null : x >= 0.9 && errorsOf(c, a) + errorsOf(c, b) === 0)} |`);
  }
  p();
} else {
  p('## Throughput and ratios');
  p();
  const cols = targets.map((t) => `${t} req/s`);
  const rcols = [];
  for (const l of lks) { if (targets.includes('node')) rcols.push([l, 'node']); }
  for (const l of lks) { if (targets.includes('ceiling')) rcols.push([l, 'ceiling']); }
  p(`| case | ${cols.join(' | ')} | ${rcols.map(([x, y]) => `${x} / ${y}`).join(' | ')} | issue's target | met (${lks.join(', ')}) | node, issue's reference |`);
  p(`|---|${cols.map(() => '---').join('|')}|${rcols.map(() => '---').join('|')}|---|---|---|`);
  for (const c of cases) {
    const vals = targets.map((t) => (of(c, t).length ? fmtRps(med(c, t, 'rps')) : '—'));
    const rs = rcols.map(([x, y]) => {
      const v = ratio(c, x, y);
      return y === 'ceiling' ? fmtPct(v) : fmtX(v);
    });
    const j = lks.map((l) => judge(c, l));
    p(`| ${caseTitle[c] ?? c} | ${vals.join(' | ')} | ${rs.join(' | ')} | ${j[0].text} | ${j.map((x) => ok(x.met)).join(' ')} | ${nodeReference[c] ? fmtRps(nodeReference[c]) : '—'} |`);
  }
  p();
}

// Issue 20's acceptance: token issuance speed unchanged within noise by claims mapping.
const pairs = [];
for (const b of targets.filter(isBaseline)) {
  for (const c of ['cc_jwt', 'refresh']) {
    if (of(c, b).length && of(c, 'lk-pg').length) pairs.push([c, b, c, 'lk-pg']);
  }
}
for (const t of lks) {
  if (of('refresh', t).length && of('refresh_claims', t).length) pairs.push(['refresh', t, 'refresh_claims', t]);
}
if (pairs.length) {
  const label = (c, t) => (isBaseline(t) ? `${c} on ${t} (${meta.targets[t].baseline.slice(0, 7)})` : `${c} on ${t}`);
  p('## Claims mapping: before/after');
  p();
  p('Same run, interleaved. Baseline rows: the revision before claims mapping (`lk-base`) against the current build on the same stack (PostgreSQL + Redis; tenant, clients and user alike; neither asks for roles or groups). `refresh_claims` rows: the current build, refresh with a client that asks for `roles groups` and maps two attributes and a static value into every token, against plain refresh. Figures are medians over the rounds; a ratio is the median of the per-round ratios (after / before), so for CPU a ratio above 1 is a cost.');
  p();
  const range = (xs) => (xs.length > 1 ? `${fmtPct(Math.min(...xs))}–${fmtPct(Math.max(...xs))}` : '—');
  p('| before | after | req/s before | req/s after | req/s after / before | per round | CPU µs/req before | CPU µs/req after | CPU after / before | per round |');
  p('|---|---|---|---|---|---|---|---|---|---|');
  for (const [cb, tb, ca, ta] of pairs) {
    p(`| ${label(cb, tb)} | ${label(ca, ta)} | ${fmtRps(med(cb, tb, 'rps'))} | ${fmtRps(med(ca, ta, 'rps'))} | ${fmtPct(pairRatio(ca, ta, cb, tb))} | ${range(pairRatios(ca, ta, cb, tb))} | ${fmtRps(med(cb, tb, 'cpu_us_per_req'))} | ${fmtRps(med(ca, ta, 'cpu_us_per_req'))} | ${fmtPct(pairRatio(ca, ta, cb, tb, 'cpu_us_per_req'))} | ${range(pairRatios(ca, ta, cb, tb, 'cpu_us_per_req'))} |`);
  }
  p();
}

p('## Latency, errors and server CPU per request');
p();
p('Medians over the rounds; errors are summed over them. "non-2xx" counts wrk\'s status errors (responses with status ≥ 400) and, for the code flow and sign-in, failed flows; socket errors are connect, read, write and timeout errors. CPU µs/req is the server process\'s utime + stime (/proc/PID/stat) over the run divided by the requests it answered (per flow for the code flow, per sign-in for sign-in); cores busy is that CPU time over the wall time.');
p();
p('| case | target | req/s | p50 ms | p99 ms | non-2xx | socket errors | CPU µs/req | cores busy |');
p('|---|---|---|---|---|---|---|---|---|');
for (const c of cases) {
  for (const t of targets) {
    if (!of(c, t).length) continue;
    p(`| ${caseTitle[c] ?? c} | ${t} | ${fmtRps(med(c, t, 'rps'))} | ${fmtMs(med(c, t, 'p50_ms'))} | ${fmtMs(med(c, t, 'p99_ms'))} | ${sum(of(c, t).map((r) => r.non2xx))} | ${sum(of(c, t).map((r) => r.socket_errors))} | ${fmtRps(med(c, t, 'cpu_us_per_req'))} | ${(med(c, t, 'cores_busy') ?? 0).toFixed(2)} |`);
  }
}
p();

p('## Memory');
p();
p('Idle: VmRSS two seconds after the servers were ready, before any load. Peak: VmHWM at the end of the run. Issue\'s target for Latchkey: idle ≤ 20 MiB, peak ≤ 64 MiB.');
p();
p('| target | idle RSS MiB | peak RSS MiB | met |');
p('|---|---|---|---|');
for (const t of targets) {
  const { idle_rss_kib: idle, peak_rss_kib: peak } = meta.targets[t];
  const met = lks.includes(t) ? ok(idle <= 20 * 1024 && peak <= 64 * 1024) : '—';
  p(`| ${t} | ${mib(idle)} | ${mib(peak)} | ${met} |`);
}
p();

if (meta.startup) {
  const ex = meta.startup.existing_ms;
  p('## Start-up');
  p();
  p('`latchkey serve` on the embedded default, polled every 5 ms. Issue\'s target ≤ 200 ms.');
  p();
  p('| database | exec → first `/readyz` 200 (ms) | ≤ 200 ms |');
  p('|---|---|---|');
  p(`| fresh (migrations, new master key) | ${meta.startup.fresh_ms} | ${ok(meta.startup.fresh_ms <= 200)} |`);
  p(`| provisioned tenant (median of ${ex.join(', ')}) | ${median(ex)} | ${ok(median(ex) <= 200)} |`);
  p();
}

if (meta.signin_bench || of('signin', lks[0]).length) {
  p('## Sign-in next to the argon2id bound');
  p();
  const sb = meta.signin_bench;
  if (sb) {
    p(`\`signin-bench\` (bench/signin.sh, 3 s phases, its own in-process server on the embedded default; run after the rounds with the other servers stopped): argon2id alone ${sb.argon2_per_s.toFixed(1)} verifications/s on ${meta.cores} threads, sign-ins ${sb.signins_per_s.toFixed(1)}/s, **${sb.ratio_pct.toFixed(1)} % of the bound** (median of its alternating rounds; ${sb.failed} failed round trips).`);
    p();
  }
  for (const l of lks) {
    const r = med('signin', l, 'rps');
    if (r == null) continue;
    p(`- \`${l}\` sign-ins in the rounds (bench/peer/codeflow.mjs signin, ${meta.flow_conc} browsers): ${r.toFixed(1)}/s${bound ? ` = ${(100 * r / bound).toFixed(1)} % of that bound (which had the cores to itself; in the rounds the Node driver shares them)` : ''}.`);
  }
  p();
}

const bad = rows.filter((r) => r.non2xx || r.socket_errors || !r.requests);
p('## Errors');
p();
if (!bad.length) p('None: every run had zero non-2xx answers and zero socket errors.');
for (const r of bad) p(`- round ${r.round}, ${r.case} on ${r.target}: ${r.non2xx} non-2xx, ${r.socket_errors} socket errors, ${r.requests} answered${r.errors?.length ? `; first: ${r.errors[0]}` : ''}`);
p();

writeFileSync(mdPath, `${out.join('\n')}\n`);
if (from) process.exit(0);
const stamp = { date: meta.date, mode: meta.mode, build: meta.build, commit: meta.commit };
writeFileSync(jsonlPath, `${[JSON.stringify({ type: 'meta', ...meta }), ...rows.map((r) => JSON.stringify({ type: 'run', ...stamp, ...r }))].join('\n')}\n`);
