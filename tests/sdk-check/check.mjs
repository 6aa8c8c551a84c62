// Reads one streamed turn from a Namra local provider server with the official SDK and prints what the SDK
// understood, as JSON on one line. Usage: node check.mjs anthropic|openai BASE_URL
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

const [provider, baseURL] = process.argv.slice(2);

if (provider === 'anthropic') {
  const client = new Anthropic({ apiKey: 'sk-ant-sdk-check', baseURL, maxRetries: 0 });
  const stream = client.messages.stream({
    model: 'claude-sonnet-4-5-20250929',
    max_tokens: 256,
    messages: [{ role: 'user', content: 'What is (17 + 25) * 2?' }],
    tools: [{ name: 'calculator', description: 'Evaluates arithmetic.', input_schema: { type: 'object', properties: { expression: { type: 'string' } } } }],
  });
  const deltas = [];
  stream.on('text', (text) => deltas.push(text));
  const message = await stream.finalMessage();
  console.log(JSON.stringify({
    deltas,
    content: message.content.map((b) => (b.type === 'text' ? { type: 'text', text: b.text } : { type: b.type, id: b.id, name: b.name, input: b.input })),
    stop_reason: message.stop_reason,
    usage: message.usage,
    model: message.model,
  }));
} else if (provider === 'openai') {
  const client = new OpenAI({ apiKey: 'sk-openai-sdk-check', baseURL, maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Weather and time?' }],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  const calls = {};
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.delta?.content) text += choice.delta.content;
      for (const call of choice.delta?.tool_calls ?? []) {
        calls[call.index] ??= { id: '', name: '', arguments: '' };
        if (call.id) calls[call.index].id = call.id;
        if (call.function?.name) calls[call.index].name = call.function.name;
        if (call.function?.arguments) calls[call.index].arguments += call.function.arguments;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  console.log(JSON.stringify({ text, calls: Object.values(calls), finish, usage }));
} else {
  console.error('usage: node check.mjs anthropic|openai BASE_URL');
  process.exit(2);
}
