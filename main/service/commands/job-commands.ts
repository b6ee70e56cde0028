/**
 * `spindle plan POOL ACTION…`, the commands that start jobs (`rebuild`,
 * `rebalance`, `migrate`, `scrub`), and `spindle jobs [--watch]`,
 * `spindle jobs pause|resume|cancel ID`.
 *
 * A starting command shows the plan first when it talks to a person (a
 * terminal, no --json), and refuses at once when the plan is impossible;
 * then it prints the job's id. `plan` exits 1 when the action is
 * impossible (with --json, after printing the plan that says why).
 */
import { Option, type Command } from 'commander';
import { VOLUME_LAYOUTS, type PlanAction, type VolumeLayout } from '../../../preload/api.js';
import type { ControlClient } from '../control-client.js';
import { CliError, EXIT_USAGE, parseCount, parseVolumePath, print, toMemberRef, toMemberUri, withEngineHost, type Io, type JsonOption } from './command-support.js';
import { jobLine, jobsText, planText, reportLine } from './job-text.js';
import { watchJobs } from './jobs-watch.js';

const ACTIONS = 'rebuild [--spare M], add M…, remove M, spare M, migrate VOL --layout L, rebalance, scrub [VOL]';

interface ActionOptions {
  spare?: string;
  layout?: VolumeLayout;
  width?: number;
  force?: boolean;
}

/** `rebuild`, `add a.img b.img`, `migrate vol --layout raid5` … → the contract action; usage errors for the rest. */
export function parseAction(name: string, args: readonly string[], options: ActionOptions): PlanAction {
  const usage = (problem: string): CliError => new CliError(`${name}: ${problem}`, EXIT_USAGE);
  const count = (min: number, max: number, what: string): void => {
    if (args.length < min || args.length > max) throw usage(`expects ${what}, got ${args.length === 0 ? 'nothing' : args.join(' ')}`);
  };
  const only = (...allowed: Array<keyof ActionOptions>): void => {
    for (const key of ['spare', 'layout', 'width', 'force'] as const) {
      if (options[key] !== undefined && !allowed.includes(key)) throw usage(`--${key} does not go with ${name}`);
    }
  };
  switch (name) {
    case 'rebuild':
      count(0, 0, 'no arguments');
      only('spare');
      return options.spare !== undefined ? { kind: 'rebuild', spare: toMemberRef(options.spare) } : { kind: 'rebuild' };
    case 'add':
      count(1, 256, 'one or more drives');
      only('force');
      return { kind: 'add', members: args.map(toMemberUri), ...(options.force === true ? { force: true } : {}) };
    case 'remove':
      count(1, 1, 'one member');
      only();
      return { kind: 'remove', member: toMemberRef(args[0]!) };
    case 'spare':
      count(1, 1, 'one drive or member');
      only();
      return { kind: 'spare', member: toMemberRef(args[0]!) };
    case 'migrate':
      count(1, 1, 'one volume');
      only('layout', 'width');
      if (options.layout === undefined) throw usage('needs --layout');
      return { kind: 'migrate', volume: args[0]!, layout: options.layout, ...(options.width !== undefined ? { width: options.width } : {}) };
    case 'rebalance':
      count(0, 0, 'no arguments');
      only();
      return { kind: 'rebalance' };
    case 'scrub':
      count(0, 1, 'at most one volume');
      only();
      return args[0] !== undefined ? { kind: 'scrub', volume: args[0] } : { kind: 'scrub' };
    default:
      throw new CliError(`unknown action "${name}": use ${ACTIONS}`, EXIT_USAGE);
  }
}

/** Starts the job for an action: the plan first for a person, then the job id. */
export async function startAction(io: Io, options: JsonOption, pool: string, action: PlanAction): Promise<void> {
  await withEngineHost(async (client) => {
    if (io.tty && !options.json) {
      const plan = await client.request('plan', { pool, action });
      if (!plan.possible) throw new CliError(planText(plan));
      io.out(`${planText(plan)}\n`);
    }
    const job = await client.request('job-start', { pool, action });
    print(io, options, job, job.state === 'done' ? reportLine(job) : `job ${job.id} started: ${job.title} (follow it with \`spindle jobs --watch\`)`);
  });
}

const layoutOption = (): Option => new Option('--layout <layout>', 'the new layout').choices(VOLUME_LAYOUTS);
const widthOption = (): Option => new Option('--width <n>', 'members per chunk (default: what the layout picks for the pool)').argParser(parseCount('width', 1, 257));

export function addJobCommands(program: Command, io: Io): void {
  program
    .command('plan')
    .description(`what an action would do, without doing it (exit 1 when it cannot be done); ACTION: ${ACTIONS}`)
    .argument('<pool>', 'pool name')
    .argument('<action>', 'rebuild, add, remove, spare, migrate, rebalance or scrub')
    .argument('[args...]', "the action's drives, member or volume")
    .option('--spare <member>', 'rebuild: onto this spare (uuid, prefix, URI or path)')
    .addOption(layoutOption())
    .addOption(widthOption())
    .option('--force', 'add: erase what the drives hold (the plan lists it)')
    .option('--json', 'print JSON')
    .action(async (pool: string, name: string, args: string[], options: JsonOption & ActionOptions) => {
      const action = parseAction(name, args, options);
      const plan = await withEngineHost((client) => client.request('plan', { pool, action }));
      if (options.json) print(io, options, plan, '');
      else if (plan.possible) io.out(`${planText(plan)}\n`);
      if (!plan.possible) throw new CliError(planText(plan));
    });

  program
    .command('rebuild')
    .description("restore redundancy after a member failed: onto the spare, else into free space on one member, else spread over several")
    .argument('<pool>', 'pool name')
    .option('--spare <member>', 'rebuild onto this spare (uuid, prefix, URI or path)')
    .option('--json', 'print JSON')
    .action(async (pool: string, options: JsonOption & { spare?: string }) => startAction(io, options, pool, parseAction('rebuild', [], options)));

  program
    .command('rebalance')
    .description('even out how full the data members are')
    .argument('<pool>', 'pool name')
    .option('--json', 'print JSON')
    .action(async (pool: string, options: JsonOption) => startAction(io, options, pool, { kind: 'rebalance' }));

  program
    .command('migrate')
    .description("change a volume's layout online")
    .argument('<pool/volume>', 'the volume, as POOL/VOLUME')
    .addOption(layoutOption().makeOptionMandatory())
    .addOption(widthOption())
    .option('--json', 'print JSON')
    .action(async (path: string, options: JsonOption & ActionOptions) => {
      const { pool, name } = parseVolumePath(path);
      await startAction(io, options, pool, parseAction('migrate', [name], options));
    });

  program
    .command('scrub')
    .description('read everything (or one volume), check checksums and parity, repair what is bad from good copies')
    .argument('<pool>', 'pool name')
    .argument('[volume]', 'only this volume')
    .option('--json', 'print JSON')
    .action(async (pool: string, volume: string | undefined, options: JsonOption) =>
      startAction(io, options, pool, parseAction('scrub', volume !== undefined ? [volume] : [], {})),
    );

  const jobs = program
    .command('jobs')
    .description('running and recent jobs; --watch follows them until none runs (exit 1 if one failed or was cancelled); pause, resume or cancel one')
    .usage('[options] | pause|resume|cancel <id>')
    .argument('[command]')
    .option('--pool <pool>', 'only the jobs of this pool')
    .option('--watch', 'follow the running jobs until none runs')
    .option('--json', 'print JSON')
    .action(async (given: string | undefined, options: JsonOption & { pool?: string; watch?: boolean }) => {
      if (given !== undefined) throw new CliError(`spindle jobs has no command '${given}': use pause, resume or cancel (see spindle jobs --help)`, EXIT_USAGE);
      await withEngineHost(async (client) => {
        if (options.watch) {
          await watchJobs(client, io, options);
          return;
        }
        const reply = await client.request('job-list', options.pool !== undefined ? { pool: options.pool } : {});
        print(io, options, reply, jobsText(reply.jobs));
      });
    });

  const control = (verb: 'pause' | 'resume' | 'cancel', description: string): void => {
    jobs
      .command(verb)
      .description(description)
      .argument('<id>', 'job id (spindle jobs lists them)')
      .option('--json', 'print JSON')
      .action(async (id: string, _options: JsonOption, command: Command) => {
        // `spindle jobs pause ID --json`: the --json may have been taken by `jobs` itself.
        const options = command.optsWithGlobals<JsonOption>();
        const job = await withEngineHost((client: ControlClient) => client.request(`job-${verb}`, { id }));
        print(io, options, job, job.report ? reportLine(job) : jobLine(job, { bar: false }));
      });
  };
  control('pause', 'pause a job (it keeps its place; nothing is undone)');
  control('resume', 'resume a paused job');
  control('cancel', 'cancel a job: the step under way is undone, the steps done stay');
}
