// Drives falconjs (CrowdStrike's JavaScript SDK), unmodified, against the Falcon emulator.
//
//   node drive.js SCENARIO   with FALCON_EMULATOR = {"base_url", "client_id", "client_secret"}
//
// falconjs only knows Falcon's four public clouds; its documented fetchApi option is the one
// seam, and here it sends what falconjs addresses to api.crowdstrike.com to the emulator instead.
// Each scenario prints one JSON line of what falconjs got; "invalidated" also prints
// {"ready": true} and waits for a line on stdin before its second call, so the test can act
// in between without sleeping.
"use strict";

const readline = require("node:readline");
const { FalconClient } = require("crowdstrike-falcon");

const emulator = JSON.parse(process.env.FALCON_EMULATOR);
const PUBLIC_US1 = "https://api.crowdstrike.com";

function toEmulator(input, init) {
  const url = typeof input === "string" ? input : input.url;
  if (!url.startsWith(PUBLIC_US1)) throw new Error(`falconjs tried to leave for ${url}`);
  return fetch(emulator.base_url + url.slice(PUBLIC_US1.length), init);
}

function client(secret = emulator.client_secret) {
  return new FalconClient({
    cloud: "us-1",
    clientId: emulator.client_id,
    clientSecret: secret,
    fetchApi: toEmulator,
  });
}

async function statusOf(call) {
  try {
    await call();
    return 200;
  } catch (error) {
    if (error.response) return error.response.status;
    throw error;
  }
}

function nextLine() {
  const lines = readline.createInterface({ input: process.stdin });
  return new Promise((resolve) => lines.once("line", (line) => { lines.close(); resolve(line); }));
}

const scenarios = {
  // Every page of the hosts query, then the details of the first three.
  async pages() {
    const falcon = client();
    const ids = [];
    let offset = 0;
    for (;;) {
      const page = await falcon.hosts.queryDevicesByFilter(offset, 10);
      ids.push(...page.resources);
      offset = page.meta.pagination.offset;
      if (offset >= page.meta.pagination.total) break;
    }
    const details = await falcon.hosts.getDeviceDetailsV2(ids.slice(0, 3));
    return { ids, hostnames: details.resources.map((host) => host.hostname) };
  },

  // An FQL filter, as falconjs sends it.
  async filtered() {
    const page = await client().hosts.queryDevicesByFilter(0, 100, undefined, "platform_name:'Linux'");
    return { ids: page.resources };
  },

  // Twenty calls at once on a cold client.
  async concurrent() {
    const falcon = client();
    const calls = Array.from({ length: 20 }, () => statusOf(() => falcon.hosts.queryDevicesByFilter(0, 1)));
    return { statuses: await Promise.all(calls) };
  },

  // A call, then (once the test has invalidated every token) another.
  async invalidated() {
    const falcon = client();
    const first = await statusOf(() => falcon.hosts.queryDevicesByFilter(0, 1));
    console.log(JSON.stringify({ ready: true }));
    await nextLine();
    const second = await statusOf(() => falcon.hosts.queryDevicesByFilter(0, 1));
    return { first, second };
  },

  // The wrong secret.
  async wrong_secret() {
    return { status: await statusOf(() => client("not-the-secret").hosts.queryDevicesByFilter(0, 1)) };
  },
};

scenarios[process.argv[2]]().then(
  (result) => console.log(JSON.stringify(result)),
  (error) => {
    console.error(String(error && error.stack ? error.stack : error));
    process.exit(1);
  },
);
