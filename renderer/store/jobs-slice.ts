/** Jobs: running and paused ones with their latest progress, and finished ones with their reports. */
import type { StateCreator } from 'zustand';
import type { JobProgress, JobSummary } from '../../preload/api';

/** What the renderer knows of a job: at least its progress; the rest once job-list or job-finished told it. */
export type JobView = JobProgress & Partial<Omit<JobSummary, keyof JobProgress>>;

export interface JobsSlice {
  readonly jobs: Readonly<Record<string, JobView>>;
  /** Order of first sight, so rows do not move as jobs update. */
  readonly jobOrder: readonly string[];
  /** Why the job list is unavailable (the engine host cannot run jobs yet). */
  readonly jobsProblem: string | undefined;
  setJobs(jobs: readonly JobSummary[]): void;
  setJobsProblem(problem: string): void;
  applyJobProgress(updates: readonly JobProgress[]): void;
  applyJobFinished(job: JobSummary): void;
  forgetJob(id: string): void;
}

export const createJobsSlice: StateCreator<JobsSlice, [], [], JobsSlice> = (set) => ({
  jobs: {},
  jobOrder: [],
  jobsProblem: undefined,
  setJobs: (list) =>
    set((s) => {
      const jobs = { ...s.jobs };
      const order = [...s.jobOrder];
      for (const job of list) {
        if (!jobs[job.id]) order.push(job.id);
        jobs[job.id] = { ...jobs[job.id], ...job };
      }
      return { jobs, jobOrder: order, jobsProblem: undefined };
    }),
  setJobsProblem: (jobsProblem) => set({ jobsProblem }),
  applyJobProgress: (updates) =>
    set((s) => {
      if (updates.length === 0) return {};
      const jobs = { ...s.jobs };
      let order: string[] | undefined;
      for (const update of updates) {
        if (!jobs[update.id]) (order ??= [...s.jobOrder]).push(update.id);
        jobs[update.id] = { ...jobs[update.id], ...update };
      }
      return order ? { jobs, jobOrder: order } : { jobs };
    }),
  applyJobFinished: (job) =>
    set((s) => ({
      jobs: { ...s.jobs, [job.id]: { ...s.jobs[job.id], ...job } },
      jobOrder: s.jobs[job.id] ? s.jobOrder : [...s.jobOrder, job.id],
    })),
  forgetJob: (id) =>
    set((s) => {
      const { [id]: _gone, ...jobs } = s.jobs;
      return { jobs, jobOrder: s.jobOrder.filter((j) => j !== id) };
    }),
});
