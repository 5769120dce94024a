// What `switchyard gateway`, `worker` and `dev` hold of a part they started: its ports and how to stop it.
export interface RunningPart {
  port: number;
  adminPort: number;
  stop(): Promise<void>;
}
