// Drives softserve's HTTP front-end with the `openai` npm package (installed by the test in its
// own temp dir), as a user's code would, and prints what it saw as one JSON object.
// Env: OPENAI_DIR (where node_modules/openai is), BASE_URL, API_KEY, MODEL, PROMPT.
import { createRequire } from 'node:module';

const require = createRequire(process.env.OPENAI_DIR + '/');
const OpenAI = require('openai');

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY, maxRetries: 0 });
const model = process.env.MODEL;
const prompt = process.env.PROMPT;
const out = {};

async function statusOf(promise) {
  try {
    await promise;
    return { status: 200 };
  } catch (e) {
    return { status: e.status ?? -1, type: e.type ?? e.error?.type ?? null, message: e.message };
  }
}

const greedy = await client.completions.create({ model, prompt, max_tokens: 8, temperature: 0, logprobs: 0 });
out.greedy = {
  text: greedy.choices[0].text,
  finish_reason: greedy.choices[0].finish_reason,
  token_logprobs: greedy.choices[0].logprobs.token_logprobs,
  usage: greedy.usage,
  id: greedy.id,
};

const sampled = await client.completions.create({ model, prompt, max_tokens: 8, temperature: 0.8, top_p: 0.9, seed: 7 });
out.sampled = { text: sampled.choices[0].text, finish_reason: sampled.choices[0].finish_reason };

const stream = await client.completions.create({
  model, prompt, max_tokens: 8, temperature: 0.8, top_p: 0.9, seed: 7, stream: true,
  stream_options: { include_usage: true },
});
out.stream = { text: '', chunks: 0, finish_reason: null, usage: null };
for await (const chunk of stream) {
  out.stream.chunks += 1;
  if (chunk.usage) out.stream.usage = chunk.usage;
  for (const c of chunk.choices) {
    out.stream.text += c.text;
    if (c.finish_reason) out.stream.finish_reason = c.finish_reason;
  }
}

const models = await client.models.list();
out.models = [];
for await (const m of models) out.models.push(m.id);

const stranger = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: 'not-a-key', maxRetries: 0 });
out.bad_key = await statusOf(stranger.completions.create({ model, prompt, max_tokens: 2 }));
out.unknown_model = await statusOf(client.completions.create({ model: 'no-such-prompt', prompt, max_tokens: 2 }));
out.bad_request = await statusOf(client.completions.create({ model, prompt, max_tokens: 2, n: 3 }));

process.stdout.write(JSON.stringify(out));
