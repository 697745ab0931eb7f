import { fork, type ChildProcess } from 'node:child_process';
import { round, summarize, type Summary } from './stats';
import type { BatchDone, BatchItemSpec, LoadInit, LoadReply, LoadRequest, LoadTask, RunDone } from './load-generator';

export interface TimedRun {
  transfers: number;
  perSecond: number;
  latencyMs: Summary;
  postTimes: number[];
  sagaTimes: number[];
}

/**
 * The load generator's process (bench/load-generator.ts), seen from the bench: each call sends it one job over IPC and
 * resolves with its answer. Its pid is what the bench reads its CPU from.
 */
export class LoadGenerator {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve(reply: LoadReply): void; reject(error: Error): void }>();
  private ready?: { resolve(): void; reject(error: Error): void };

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (reply: LoadReply) => {
      if (reply.type === 'ready') return this.ready?.resolve();
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.type === 'error') waiter.reject(new Error(`load generator: ${reply.message}`));
      else waiter.resolve(reply);
    });
    child.on('exit', (code) => {
      const error = new Error(`the load generator exited (${code})`);
      this.ready?.reject(error);
      for (const w of this.pending.values()) w.reject(error);
      this.pending.clear();
    });
  }

  static async start(init: LoadInit): Promise<LoadGenerator> {
    // tsx's loader, so the child runs TypeScript as this process does.
    const child = fork(require.resolve('./load-generator'), [], { execArgv: ['--import', 'tsx'], serialization: 'advanced' });
    const generator = new LoadGenerator(child);
    await new Promise<void>((resolve, reject) => {
      generator.ready = { resolve, reject };
      generator.send({ type: 'init', init });
    });
    return generator;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** `total` tasks with at most `concurrency` in flight, timed in the load generator. */
  async run(task: LoadTask, total: number, concurrency: number): Promise<TimedRun> {
    const done = (await this.request({ type: 'run', id: this.nextId++, task, total, concurrency })) as RunDone;
    return {
      transfers: total,
      perSecond: round(total / (done.ms / 1000), 1),
      latencyMs: summarize(done.latencies),
      postTimes: done.postTimes,
      sagaTimes: done.sagaTimes,
    };
  }

  /** One batch over HTTP, until it is seen settled. */
  async batch(batchId: string, items: BatchItemSpec[], options: { pollMs?: number; timeoutMs?: number } = {}): Promise<BatchDone> {
    return (await this.request({
      type: 'batch',
      id: this.nextId++,
      batchId,
      items,
      pollMs: options.pollMs ?? 100,
      timeoutMs: options.timeoutMs ?? 300_000,
    })) as BatchDone;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ type: 'close' } satisfies LoadRequest);
    const timer = setTimeout(() => this.child.kill(), 5_000);
    await exited;
    clearTimeout(timer);
  }

  private request(message: LoadRequest & { id: number }): Promise<LoadReply> {
    return new Promise((resolve, reject) => {
      this.pending.set(message.id, { resolve, reject });
      this.send(message);
    });
  }

  private send(message: LoadRequest): void {
    this.child.send(message);
  }
}
