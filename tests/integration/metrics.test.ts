// Prometheus metrics on the real stack: a requester submits jobs, scripted miners mine them over WebRTC, one cheater is
// rejected, and what /metrics says equals what happened.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomMatrix } from '../helpers/random.ts';
import { ScriptedMiner } from '../helpers/scripted-miner.ts';
import { parseExposition, sampleValue, type PromSample } from '../helpers/prometheus.ts';
import { startStack, submitGemm, TEST_API_KEY, TEST_OPERATOR_KEY, waitForJob, type TestStack } from '../helpers/stack.ts';

describe('/metrics', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const metricsUrl = () => new URL('metrics', stack.url);
  async function scrape(): Promise<PromSample[]> {
    const res = await fetch(metricsUrl(), { headers: { authorization: `Bearer ${TEST_OPERATOR_KEY}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    return parseExposition(await res.text());
  }

  it('refuses a scrape without the operator key, or with a requester\'s key, with a sentence', async () => {
    const none = await fetch(metricsUrl());
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await none.json()).toMatchObject({ error: { code: 'no-operator-key', message: expect.stringMatching(/Authorization: Bearer/) } });
    const requester = await fetch(metricsUrl(), { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    expect(requester.status).toBe(401);
    expect(await requester.json()).toEqual({ error: { code: 'bad-operator-key', message: 'that is not this coordinator\'s operator key' } });
  });

  it('counts the units leased, verified and rejected, the credits, the queue and the requests, as they happened', async () => {
    const before = await scrape();
    expect(sampleValue(before, 'ergon_units_verified_total', { kind: 'gemm' })).toBe(0);
    expect(sampleValue(before, 'ergon_audits_total', { kind: 'gemm', outcome: 'passed' })).toBe(0);
    expect(sampleValue(before, 'ergon_audits_total', { kind: 'gemm', outcome: 'failed' })).toBe(0);

    // 3 units and 2 units of 256x256.
    const jobA = await submitGemm(stack.url, 768, 256, 32, randomMatrix(768 * 32, 1), randomMatrix(32 * 256, 2));
    const jobB = await submitGemm(stack.url, 256, 512, 32, randomMatrix(256 * 32, 3), randomMatrix(32 * 512, 4));
    expect(jobA.unitsTotal + jobB.unitsTotal).toBe(5);
    const queued = await scrape();
    expect(sampleValue(queued, 'ergon_queue_units', { kind: 'gemm' })).toBe(5);

    const cheat = await ScriptedMiner.connect(stack.url);
    await cheat.hello();
    const lease = await cheat.lease();
    expect(await cheat.verdict(lease, randomMatrix(256 * 256, 5))).toMatchObject({ type: 'rejected', code: 'verification-failed' });

    const honest = [await ScriptedMiner.connect(stack.url), await ScriptedMiner.connect(stack.url)];
    await Promise.all(honest.map((m) => m.hello()));
    let done = false;
    const mining = honest.map((m) => m.mineHonestly(() => done));
    await waitForJob(stack.url, jobA.id);
    await waitForJob(stack.url, jobB.id);
    done = true;
    const receipts = (await Promise.all(mining)).flat();
    expect(receipts).toHaveLength(5);

    const after = await scrape();
    expect(sampleValue(after, 'ergon_units_leased_total', { kind: 'gemm' })).toBe(6);
    expect(sampleValue(after, 'ergon_units_verified_total', { kind: 'gemm' })).toBe(5);
    expect(sampleValue(after, 'ergon_units_rejected_total', { kind: 'gemm', reason: 'verification-failed' })).toBe(1);
    expect(after.filter((s) => s.name === 'ergon_units_rejected_total')).toHaveLength(1);
    // Every result that reached the verifier was timed: five passed, one failed.
    expect(sampleValue(after, 'ergon_verification_seconds_count', { kind: 'gemm' })).toBe(6);
    expect(sampleValue(after, 'ergon_verification_seconds_bucket', { kind: 'gemm', le: '+Inf' })).toBe(6);
    expect(sampleValue(after, 'ergon_verification_seconds_sum', { kind: 'gemm' })).toBeGreaterThan(0);

    const paid = receipts.reduce((s, r) => s + r.receipt.microCredits, 0n);
    expect(paid).toBe((await stack.ledger.totals()).microCredits);
    expect(sampleValue(after, 'ergon_credits_issued_microcredits_total', { kind: 'gemm' })).toBe(Number(paid));

    expect(sampleValue(after, 'ergon_miners_connected')).toBe(3);
    expect(sampleValue(after, 'ergon_queue_units', { kind: 'gemm' })).toBe(0);
    expect(sampleValue(after, 'ergon_http_requests_total', { route: '/api/jobs/:kind', method: 'POST', status: '201' })).toBe(2);
    expect(sampleValue(after, 'ergon_http_requests_total', { route: '/metrics', method: 'GET', status: '401' })).toBe(2);
    // Job ids never become labels: every status poll of either job is one series.
    expect(sampleValue(after, 'ergon_http_requests_total', { route: '/api/jobs/:id', method: 'GET', status: '200' })).toBeGreaterThanOrEqual(2);
    expect(after.some((s) => Object.values(s.labels).some((v) => v.includes(jobA.id)))).toBe(false);

    for (const miner of [cheat, ...honest]) miner.close();
  });
});
