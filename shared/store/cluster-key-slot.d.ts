// The Redis Cluster hash slot of a key (CRC16 of its hash tag, mod 16384): ioredis' own helper.
declare module 'cluster-key-slot' {
  function calculateSlot(key: string): number;
  export = calculateSlot;
}
