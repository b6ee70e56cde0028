/**
 * Slab allocation: which free slab of which member each new chunk gets.
 *
 * Invariants: a chunk's slabs are on distinct members; a slab belongs to at
 * most one chunk. Policy: each chunk takes the `width` members with the most
 * free slabs (ties by member order), which spreads data by free space and,
 * for mixed member sizes, is what lets the big members be used fully.
 *
 * Free space per layout is exact, not a ratio: k chunks of width w fit iff
 * Σ_m min(free_m, k) ≥ w·k (each member gives at most one slab per chunk),
 * so the allocatable chunk count is the largest such k, found by bisection.
 */
export interface SlabAddress {
  readonly member: string;
  readonly slab: number;
}

interface MemberSlabs {
  readonly uuid: string;
  readonly slabCount: number;
  /** Free slab indexes, kept sorted descending so pop() gives the lowest. */
  readonly free: number[];
  eligible: boolean;
}

export class AllocationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AllocationError';
  }
}

export class SlabAllocator {
  private readonly members = new Map<string, MemberSlabs>();

  /** `used`: slabs already in chunks (from the pool's chunk map). */
  constructor(members: ReadonlyArray<{ uuid: string; slabCount: number }>, used: Iterable<SlabAddress> = []) {
    // A bitmap per member: a big pool has millions of slabs.
    const taken = new Map(members.map((m) => [m.uuid, new Uint8Array(m.slabCount)]));
    for (const { member, slab } of used) {
      const bits = taken.get(member);
      if (bits && slab < bits.length) bits[slab] = 1;
    }
    for (const m of members) this.addMember(m.uuid, m.slabCount, taken.get(m.uuid));
  }

  addMember(uuid: string, slabCount: number, taken?: Uint8Array): void {
    if (this.members.has(uuid)) throw new AllocationError(`member ${uuid} is already known to the allocator`);
    const free: number[] = [];
    for (let slab = slabCount - 1; slab >= 0; slab--) if (!taken?.[slab]) free.push(slab);
    this.members.set(uuid, { uuid, slabCount, free, eligible: true });
  }

  /** Stops (or resumes) placing new slabs on a member: failed, missing, spare or being evacuated. */
  setEligible(uuid: string, eligible: boolean): void {
    const m = this.members.get(uuid);
    if (m) m.eligible = eligible;
  }

  freeSlabs(uuid: string): number {
    return this.members.get(uuid)?.free.length ?? 0;
  }

  /** Free slab count of every eligible member (excluding `exclude`). */
  private candidates(exclude: ReadonlySet<string>): MemberSlabs[] {
    return [...this.members.values()].filter((m) => m.eligible && !exclude.has(m.uuid) && m.free.length > 0);
  }

  /**
   * Takes `width` slabs on distinct members for one chunk, or throws
   * AllocationError saying why. `exclude` keeps members out (e.g. the other
   * members of a chunk being repaired).
   */
  allocate(width: number, exclude: ReadonlySet<string> = new Set()): SlabAddress[] {
    const candidates = this.candidates(exclude).sort((a, b) => b.free.length - a.free.length);
    if (candidates.length < width) {
      throw new AllocationError(`a chunk needs free space on ${width} distinct members; only ${candidates.length} have any`);
    }
    return candidates.slice(0, width).map((m) => ({ member: m.uuid, slab: m.free.pop()! }));
  }

  /** Takes the lowest free slab of one member, eligible or not (a spare, a planned move's target). */
  allocateOn(uuid: string): SlabAddress {
    const m = this.members.get(uuid);
    if (!m || m.free.length === 0) throw new AllocationError(`member ${uuid} has no free slab`);
    return { member: uuid, slab: m.free.pop()! };
  }

  /** Forgets a member that left the pool. */
  removeMember(uuid: string): void {
    this.members.delete(uuid);
  }

  isEligible(uuid: string): boolean {
    return this.members.get(uuid)?.eligible ?? false;
  }

  /** Members the allocator knows, with their free slab counts (plans simulate on a clone). */
  memberFree(): Array<{ uuid: string; free: number; slabCount: number; eligible: boolean }> {
    return [...this.members.values()].map((m) => ({ uuid: m.uuid, free: m.free.length, slabCount: m.slabCount, eligible: m.eligible }));
  }

  /** An independent copy, for plans to try allocations on. */
  clone(): SlabAllocator {
    const copy = new SlabAllocator([]);
    for (const m of this.members.values()) copy.members.set(m.uuid, { uuid: m.uuid, slabCount: m.slabCount, free: [...m.free], eligible: m.eligible });
    return copy;
  }

  /** Takes one specific slab (used when replaying the chunk map, or for planned moves). */
  take(address: SlabAddress): void {
    const m = this.members.get(address.member);
    const index = m?.free.indexOf(address.slab) ?? -1;
    if (!m || index < 0) throw new AllocationError(`slab ${address.slab} of member ${address.member} is not free`);
    m.free.splice(index, 1);
  }

  release(slabs: Iterable<SlabAddress>): void {
    for (const { member, slab } of slabs) {
      const m = this.members.get(member);
      if (!m) continue;
      // Keep descending order so the lowest free slab is reused first.
      let i = m.free.length;
      while (i > 0 && m.free[i - 1]! < slab) i--;
      m.free.splice(i, 0, slab);
    }
  }

  /** How many more chunks of `width` fit (exact; see the theory comment). */
  chunksThatFit(width: number, exclude: ReadonlySet<string> = new Set()): number {
    const free = this.candidates(exclude).map((m) => m.free.length);
    if (free.length < width) return 0;
    const total = free.reduce((a, b) => a + b, 0);
    let lo = 0;
    let hi = Math.floor(total / width);
    while (lo < hi) {
      const k = Math.ceil((lo + hi + 1) / 2);
      const supply = free.reduce((sum, f) => sum + Math.min(f, k), 0);
      if (supply >= width * k) lo = k;
      else hi = k - 1;
    }
    return lo;
  }
}
