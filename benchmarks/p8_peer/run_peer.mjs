// P8's peer driver: the same jobs through @saintno/comfyui-sdk's ComfyPool, as its README shows.
//
//   node run_peer.mjs CONFIG RESULT
//
// CONFIG and RESULT are the JSON of benchmarks/p8_drive.py: every job is handed to the pool at
// once (pool.run with a CallWrapper each, the pool's default mode), "started" is printed at the
// first one, and RESULT gets wall (first job -> last outcome), cpu (this process, same span),
// outcomes (seed -> "ok" or the error) and servers (seed -> URL). At the deadline whatever has
// ended is written and the process exits: the jobs without an outcome are the ones it hung on
// (last_outcome: when the last job that did end ended).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CallWrapper, ComfyApi, ComfyPool, PromptBuilder } from "@saintno/comfyui-sdk";

const [configPath, resultPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, "utf-8"));
const here = dirname(fileURLToPath(import.meta.url));
const template = JSON.parse(
  readFileSync(join(here, "..", "..", "examples", "workflows", "sd15_txt2img_api.json"), "utf-8"),
);
template["3"].inputs.steps = config.steps;
template["5"].inputs.width = 64;
template["5"].inputs.height = 64;

const result = { mode: "peer", outcomes: {}, servers: {} };
let started = 0;
let cpu = null;
let lastOutcome = 0;

function finish(note) {
  if (started) {
    result.wall = (performance.now() - started) / 1000;
    if (lastOutcome) result.last_outcome = (lastOutcome - started) / 1000;
    const used = process.cpuUsage(cpu);
    result.cpu = (used.user + used.system) / 1e6;
  }
  if (note) result.note = note;
  writeFileSync(resultPath, JSON.stringify(result));
  process.exit(0);
}

setTimeout(() => finish(`stopped at the deadline (${config.deadline} s)`), config.deadline * 1000);
// A dead server makes the SDK throw from its own timers ("TypeError: fetch failed"), which would
// end the process; a long-running service catches them to go on, and so does this driver.
for (const event of ["unhandledRejection", "uncaughtException"]) {
  process.on(event, (error) => {
    result.uncaught = (result.uncaught || 0) + 1;
    result.first_uncaught = result.first_uncaught || String(error).slice(0, 200);
  });
}

const clients = config.urls.map((url) => new ComfyApi(url));
// Its job queue holds 1,000 by default and refuses more: made room for the whole batch.
const pool = new ComfyPool(clients, undefined, { maxQueueSize: config.jobs.length + 1 });
await new Promise((resolve) => {
  let ready = 0;
  pool.on("ready", () => {
    ready += 1;
    if (ready === clients.length) resolve();
  });
});
console.log("ready");

function job(seed, checkpoint) {
  return async (api) => {
    result.servers[seed] = api.apiHost;
    const workflow = new PromptBuilder(template, ["checkpoint", "seed"], ["images"])
      .setInputNode("checkpoint", "4.inputs.ckpt_name")
      .setInputNode("seed", "3.inputs.seed")
      .setOutputNode("images", "9")
      .input("checkpoint", checkpoint)
      .input("seed", seed);
    let failure = null;
    const output = await new CallWrapper(api, workflow)
      .onFailed((error) => {
        failure = error;
      })
      .run();
    if (output) return "ok";
    return failure ? `error: ${String(failure.message || failure).slice(0, 200)}` : "no output";
  };
}

started = performance.now();
cpu = process.cpuUsage();
console.log("started");
await Promise.all(
  config.jobs.map(([seed, checkpoint]) =>
    Promise.resolve()
      .then(() => pool.run(job(seed, checkpoint)))
      .then(
        (outcome) => {
          result.outcomes[seed] = outcome;
          lastOutcome = performance.now();
        },
        (error) => {
          result.outcomes[seed] = `error: ${String(error?.message || error).slice(0, 200)}`;
          lastOutcome = performance.now();
        },
      ),
  ),
);
finish(null);
