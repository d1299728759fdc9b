import { afterEach } from 'vitest';

interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Workers, schedulers and anything else with a stop() that the calling test file
 * starts: each is stopped after its test.
 */
export function useServices() {
  const running: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((service) => service.stop()));
  });
  return {
    /** Starts `service` and stops it after the test. */
    async start<T extends Service>(service: T): Promise<T> {
      running.push(service);
      await service.start();
      return service;
    },
    /** Stops (or closes) `service` after the test. */
    track(service: { stop(): Promise<void> }): void {
      running.push(service);
    },
  };
}

/** A promise that stays pending until `open()`: holds a handler mid-run. */
export function gate(): { closed: Promise<void>; open: () => void } {
  let open = () => {};
  const closed = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { closed, open };
}
