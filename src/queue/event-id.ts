/**
 * Event ids: 26 characters of Crockford base32, like a ULID: 48 bits of milliseconds, then 80
 * bits that start random and count up within the same millisecond. Ids from one generator are
 * strictly increasing even when the clock stands still or steps back (time never goes below the
 * last id's), so sorting ids sorts by arrival.
 */
import { randomBytes } from 'node:crypto';
import type { NowSource } from './event-queue.js';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export class EventIdGenerator {
  private lastTime = -1;
  private rand = new Uint8Array(10);
  constructor(private readonly clock: NowSource) {}

  /** Never go below the time encoded in `id` (seed from the newest stored id at open). */
  seed(id: string | null | undefined): void {
    if (!id) return;
    const t = decodeTime(id);
    if (t !== null && t >= this.lastTime) {
      // Continue from the next millisecond: every later id sorts after the seed.
      this.lastTime = t + 1;
      this.rand = new Uint8Array(randomBytes(10));
      this.rand[0] &= 0x7f; // leave room to count up
    }
  }

  next(): string {
    const now = Math.floor(this.clock.now());
    if (now > this.lastTime) {
      this.lastTime = now;
      this.rand = new Uint8Array(randomBytes(10));
      this.rand[0] &= 0x7f;
    } else {
      this.increment();
    }
    return encodeTime(this.lastTime) + encodeRandom(this.rand);
  }

  private increment(): void {
    for (let i = this.rand.length - 1; i >= 0; i--) {
      if (this.rand[i] < 255) {
        this.rand[i]++;
        return;
      }
      this.rand[i] = 0;
    }
    // 80 bits overflowed within one millisecond: borrow the next millisecond.
    this.lastTime++;
  }
}

function encodeTime(ms: number): string {
  let s = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    s = ALPHABET[t % 32] + s;
    t = Math.floor(t / 32);
  }
  return s;
}

function encodeRandom(bytes: Uint8Array): string {
  // 80 bits -> 16 chars of 5 bits.
  let s = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      s += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return s;
}

export function decodeTime(id: string): number | null {
  if (id.length !== 26) return null;
  let t = 0;
  for (let i = 0; i < 10; i++) {
    const v = ALPHABET.indexOf(id[i]);
    if (v < 0) return null;
    t = t * 32 + v;
  }
  return t;
}
