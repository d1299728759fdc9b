import pg from 'pg';
import { PgTq } from '../dist/index.js';
const url = 'postgres://postgres@127.0.0.1:5432/test';
const S = 'pgtq_lat';
const admin = new pg.Client({ connectionString: url }); await admin.connect();
await admin.query(`DROP SCHEMA IF EXISTS ${S} CASCADE`);
const q = new PgTq('lat', { connectionString: url, schema: S, max: 12 });
await q.migrate();
let t0 = 0n; const starts = [], pushes = [];
const h = q.handler(async function ping() { starts.push(Number(process.hrtime.bigint() - t0) / 1e6); });
const w = q.worker({ concurrency: 10 }); await w.start();
const p = new PgTq('lat', { connectionString: url, schema: S, max: 4 });
const hp = p.handler(async function ping() {});
for (let i = 0; i < 30; i++) await hp.push();
await new Promise(r => setTimeout(r, 500)); starts.length = 0;
for (let i = 0; i < 400; i++) {
  t0 = process.hrtime.bigint(); await hp.push(); pushes.push(Number(process.hrtime.bigint() - t0) / 1e6);
  await new Promise(r => setTimeout(r, 5));
}
await new Promise(r => setTimeout(r, 200));
const pct = (a, k) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length * k)].toFixed(2); };
console.log('push p50', pct(pushes, .5), 'p99', pct(pushes, .99), '| start p50', pct(starts, .5), 'p99', pct(starts, .99), starts.length);
await w.stop(); await q.close(); await p.close(); await admin.query(`DROP SCHEMA ${S} CASCADE`); await admin.end();
