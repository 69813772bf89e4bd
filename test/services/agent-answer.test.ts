import t0 from 'tap'
import type { FastifyBaseLogger } from 'fastify'
import { normalizeResult, resultPartnumber, type ResultOutcome } from '../../src/services/ai/classification-result.js'
import { MAX_ANSWER_SCAN, findAgentAnswer, pythonLiteralAsJson, readAgentText } from '../../src/services/ai/agent-answer.js'
import type { MessageBus } from '../../src/services/bus/message-bus.js'
import { RealServerJobs, agentAnswer, executeDoneMessage } from '../../src/simulator/real-server-jobs.js'

// The real AI server (Titus-System/Nexa-AI-Agents at c0872a7) publishes its manager agent's text
// where the contract has a Result object: as `partial_result.single_classification` (a plain string)
// and as the `description` of a `done` result whose other fields are null. These tests feed that
// text, as the real code produces it, through normalizeResult and check what would be stored.

const { test } = t0
const HEADER = "Here is the response from your managed agent 'Manager':\n"
// smolagents 1.21.3 MultiStepAgent.__call__ with provide_run_summary=True (the manager has it).
const SUMMARY = "\n\nFor more detail, find below a summary of this agent's work:\n<summary_of_work>\n"

/** The text of the peer runner's fake agent (test/peer/python/shim/fake_answers.py) and of the simulator's real-server profile. */
const fakeAgentText = agentAnswer
/** A result of the real server's `done` whose fields are all null (execute() fills in only the description). */
const NULL_RESULT = { ...executeDoneMessage(null, '').result, description: null }

function stored(outcome: ResultOutcome) {
  if (!outcome.ok) throw new Error(`expected a usable result, got: ${outcome.reason}`)
  return outcome.fields
}

test('what the real server publishes for a batch item (simulator, as intended): both messages are read', async (t) => {
  const published: Array<{ channel: string; message: Record<string, unknown> }> = []
  const bus = {
    mode: 'memory',
    async publish(channel: string, message: string) {
      published.push({ channel, message: JSON.parse(message) })
    },
  } as unknown as MessageBus
  const silent = { warn() {} } as unknown as FastifyBaseLogger
  const jobs = new RealServerJobs(bus, silent, { variant: 'as-intended', agentMs: 1, secondMs: 1 })
  await jobs.batch({ progress_channel: 'ch-1', partnumbers: { LM358N: { partnumber: 'LM358N' }, 'M-2-NOPN': { partnumber: 'M-2-NOPN' }, 'M-1-ALT': { partnumber: 'M-1-ALT' } } }, 'job-1')

  const dones = published.filter((p) => p.message.status === 'done' && p.message.result)
  const partials = published.filter((p) => p.message.status === 'partial_result')
  t.equal(dones.length, 3, 'a done with a result per item')
  t.equal(partials.length, 3, 'a partial_result per item')
  t.equal(typeof partials[0]!.message.single_classification, 'string', 'single_classification is a plain string')
  t.match((dones[0]!.message.result as { description: string }).description, /^Here is the response from your managed agent 'Manager':\n\{"part_number":"LM358N"/)

  const expected = [
    { partnumber: 'LM358N', description: 'Descricao gerada pelo agente simulado para LM358N' },
    { partnumber: null, description: 'Descricao gerada pelo agente simulado para None' },
    { partnumber: 'M-1-ALT-ALT', description: 'Descricao gerada pelo agente simulado para M-1-ALT-ALT' },
  ]
  expected.forEach((e, i) => {
    const common = { ncm: '85423190', ex: null, nve: null, manufacturer: null, confidence: 0.9 }
    t.same(stored(normalizeResult(dones[i]!.message.result)), { ...e, ...common }, `done ${i + 1}: stored from the agent's text`)
    t.same(stored(normalizeResult(partials[i]!.message.single_classification)), { ...e, ...common }, `partial_result ${i + 1}: the same`)
  })
})

test('the fake agent text, byte for byte, in both places', async (t) => {
  const text = fakeAgentText('LM358N')
  const fields = { partnumber: 'LM358N', ncm: '85423190', ex: null, nve: null, description: 'Descricao gerada pelo agente simulado para LM358N', manufacturer: null, confidence: 0.9 }
  t.same(normalizeResult(text), { ok: true, fields }, 'partial_result.single_classification')
  t.same(normalizeResult(executeDoneMessage(null, text).result), { ok: true, fields }, "done.result.description, every other field null")
  t.same(normalizeResult(JSON.stringify(executeDoneMessage(null, text).result)), { ok: true, fields }, 'the same done result sent as a JSON string')
  t.equal(stored(normalizeResult(fakeAgentText(null))).partnumber, null, 'part_number null: no part number')
})

test('an answer of the shape the manager prompt asks for, as str() of the dict the model passed to final_answer, with the run summary', async (t) => {
  // The final answer rendered by Jinja (str() of a dict: a Python repr), then the summary of the
  // run, whose messages hold other JSON: the task's example input and the classificator's pairs.
  const text = HEADER
    + "{'part_number': 'CL10C330JB8NNNC', 'supplier': 'Samsung Electronics', 'specifications': {'input_part_number': 'CL10C330JB8NNNC', "
    + "'manufacturer': 'Samsung Electro-Mechanics', 'specifications': {'capacitance': '33pF', 'voltage': '50V', 'dielectric': 'C0G'}, 'rohs': True, 'weight': None}, "
    + "'description': 'Capacitor cerâmico multicamadas (MLCC) de 33 pF, 50 V, dielétrico C0G, encapsulamento 0603 \"SMD\"; d\\'uso geral.', "
    + "'classification': [{'ncm': '8532.24.10', 'ex': '', 'confidence': '0.8731'}, {'ncm': '8532.24.90', 'ex': '0', 'confidence': '0.7912'}, "
    + "{'ncm': '8532.25.10', 'ex': '0', 'confidence': '0.6023'}]}"
    + SUMMARY
    + "\nNew task:\n...input_data = {\n    \"part_number\": \"ABC123\",\n    \"supplier\": \"TechCorp\"\n}\n---\n"
    + "\n[{'type': 'text', 'text': 'Observation:\\n{\"results\": [{\"ncm_code\": \"85369040\", \"ex_code\": \"0\", \"similarity\": 0.99}]}'}]\n---\n</summary_of_work>"
  t.same(normalizeResult(text), {
    ok: true,
    fields: {
      partnumber: 'CL10C330JB8NNNC',
      ncm: '85322410',
      ex: null,
      nve: null,
      description: "Capacitor cerâmico multicamadas (MLCC) de 33 pF, 50 V, dielétrico C0G, encapsulamento 0603 \"SMD\"; d'uso geral.",
      manufacturer: { name: 'Samsung Electro-Mechanics', address: null, country: null },
      confidence: 0.8731,
    },
  }, 'the best of the three candidates; the manufacturer from the web agent JSON, never the supplier')

  const onlyInSummary = `${HEADER}The web_search_agent failed to find CL10C330JB8NNNC; aborting.${SUMMARY}{"results": [{"ncm_code": "85369040", "ex_code": "0", "similarity": 0.99}]}\n---\n</summary_of_work>`
  t.same(normalizeResult(onlyInSummary), { ok: false, reason: "the AI server's answer has no JSON object to read an NCM code from", partnumber: null }, 'nothing is read from the run summary')
})

test('JSON in a code fence, with prose around it (the final_answer post_messages ask for a ```json block)', async (t) => {
  const text = `${HEADER}Based on the execution history, here is the final response:\n\n\`\`\`json\n{\n  "part_number": "lm358n",\n  "supplier": "",\n`
    + `  "specifications": {},\n  "description": "Amplificador operacional duplo",\n  "classification": [\n    {"ncm": "8542.33.90", "ex": "Ex 01", "confidence": 0.64},\n  ]\n}\n\`\`\`\n\nNote: the classification confidence is moderate {see above}.`
  t.same(stored(normalizeResult(text)), {
    partnumber: 'LM358N', ncm: '85423390', ex: '01', nve: null, description: 'Amplificador operacional duplo', manufacturer: null, confidence: 0.64,
  }, 'fence, trailing comma and prose after it; part number upper case as stored for contract results')
})

test('several candidates: the most confident usable one is kept', async (t) => {
  const answer = (classification: unknown[]) => `${HEADER}${JSON.stringify({ part_number: 'P1', classification })}`
  const ncmOf = (text: string) => stored(normalizeResult(text)).ncm
  t.equal(ncmOf(answer([{ ncm: '85423190', confidence: '0.9' }, { ncm: '85423990', confidence: '0.8' }])), '85423190', 'sorted best first: the first')
  t.equal(ncmOf(answer([{ ncm: '85423190', confidence: 0.41 }, { ncm: '85423990', confidence: 0.87 }])), '85423990', 'not sorted: the highest confidence')
  t.equal(ncmOf(answer([{ ncm: '85423190', confidence: '' }, { ncm: '85423990', confidence: '' }])), '85423190', 'no confidences: the first')
  t.equal(ncmOf(answer([{ ncm: '', ex: '', confidence: '' }, { ncm: '8542.39.90', ex: '', confidence: '0.5' }])), '85423990', 'an empty entry ("code_or_empty") is skipped')
  t.equal(ncmOf(answer([{ ncm: '8542', confidence: '0.99' }, { ncm: '85423990', confidence: '0.5' }])), '85423990', 'a code that is not 8 digits is skipped')
  t.equal(ncmOf(answer(['8542.31.90'])), '85423190', 'a bare code')
  t.equal(ncmOf(`${HEADER}${JSON.stringify({ part_number: 'P1', classification: { ncm: '85423190' } })}`), '85423190', 'one object instead of a list')
  t.equal(ncmOf(`${HEADER}${JSON.stringify({ part_number: 'P1', ncm: '85423190', ex: '', confidence: '0.9' })}`), '85423190', 'the code at the top')
})

test("the classificator's own shape (ncm_code, ex_code, similarity) passed through", async (t) => {
  const text = `${HEADER}${JSON.stringify({
    input_specifications: 'dual op-amp', search_query: 'dual operational amplifier integrated circuit',
    results: [
      { ncm_code: '85423990', ex_code: '0', description_pt: 'Outros', description_en: 'Other', similarity: 0.6123 },
      { ncm_code: '85423190', ex_code: '1', description_pt: 'Processadores', description_en: 'Processors', similarity: 0.7245 },
    ],
  })}`
  t.same(stored(normalizeResult(text)), { partnumber: null, ncm: '85423190', ex: '1', nve: null, description: null, manufacturer: null, confidence: 0.7245 })
})

test('confidence, Ex and NCM as the model may write them', async (t) => {
  const one = (entry: Record<string, unknown>) => stored(normalizeResult(`${HEADER}${JSON.stringify({ part_number: 'P1', classification: [{ ncm: '85423190', ...entry }] })}`))
  t.equal(one({ confidence: '0.9' }).confidence, 0.9, 'a string')
  t.equal(one({ confidence: 0.9245 }).confidence, 0.9245, 'a number')
  t.equal(one({ confidence: '87%' }).confidence, 0.87, 'a percent')
  t.equal(one({ confidence: '0,87' }).confidence, 0.87, 'a decimal comma')
  t.equal(one({ confidence: 'high' }).confidence, null, 'a word: none')
  t.equal(one({ confidence: 87 }).confidence, null, 'a number over 1 without %: none (not guessed as a percent)')
  t.equal(one({ confidence: -0.2 }).confidence, null, 'negative (1 - an L2 distance can be): none')
  t.equal(one({ ex: '' }).ex, null, 'Ex empty')
  t.equal(one({ ex: '01' }).ex, '01')
  t.equal(one({ ex: 'Ex 01' }).ex, '01')
  t.equal(one({ ex: 'EX-002' }).ex, '002')
  t.equal(one({ ex: 1 }).ex, '1')
  t.equal(one({ ex: '1.0' }).ex, '1', 'a pandas float written with str()')
  t.equal(one({ ex: 'nan' }).ex, null, 'a pandas missing cell written with str()')
  t.equal(one({ ex: '0' }).ex, null, 'Ex 0: there is no Ex 00')
  const ncm = (value: unknown) => normalizeResult(`${HEADER}${JSON.stringify({ part_number: 'P1', classification: [{ ncm: value }] })}`)
  t.equal(stored(ncm('8542.31.90')).ncm, '85423190', 'dotted')
  t.equal(stored(ncm('NCM 8542.31.90')).ncm, '85423190', 'with its name')
  t.equal(stored(ncm(85423190)).ncm, '85423190', 'a number')
  t.same(ncm('8542.31'), { ok: false, reason: `the AI server's answer holds no NCM code: "8542.31" is not an 8-digit NCM code`, partnumber: 'P1' }, 'too short: refused, with what it was')
  t.same(ncm('854231901'), { ok: false, reason: `the AI server's answer holds no NCM code: "854231901" is not an 8-digit NCM code`, partnumber: 'P1' }, 'too long: refused')
})

test('part numbers: as given, none for null or "None", carried by unusable answers', async (t) => {
  const pn = (value: unknown) => stored(normalizeResult(`${HEADER}${JSON.stringify({ part_number: value, classification: [{ ncm: '85423190' }] })}`)).partnumber
  t.equal(pn(' bc847 blt1g '), 'BC847 BLT1G', 'trimmed, upper case')
  t.equal(pn(null), null)
  t.equal(pn('None'), null, "Python's str(None) copied from the input")
  t.equal(pn(''), null)
  t.equal(pn('X'.repeat(101)), null, 'over 100 characters: none')

  const empty = normalizeResult(`${HEADER}${JSON.stringify({ part_number: 'LM358N', supplier: '', specifications: {}, description: '', classification: [] })}`)
  t.same(empty, { ok: false, reason: "the AI server's answer holds no NCM code: its classification list is empty", partnumber: 'LM358N' }, 'classification failed: refused, naming the part number')
  t.equal(resultPartnumber(empty), 'LM358N', 'resultPartnumber reads it')
  const noList = normalizeResult(`${HEADER}{"part_number": "LM358N", "description": "no classification"}`)
  t.same(noList, { ok: false, reason: "the AI server's answer holds no NCM code: it has no classification", partnumber: 'LM358N' })

  const inDone = normalizeResult({ ...NULL_RESULT, partnumber: 'own-pn', description: fakeAgentText('OTHER') })
  t.equal(stored(inDone).partnumber, 'OWN-PN', "a done result's own partnumber wins over the text's")
  t.equal(resultPartnumber(normalizeResult({ ...NULL_RESULT, description: `${HEADER}{"part_number": "X9", "classification": []}` })), 'X9', 'from the text when the result names none')
  t.same(normalizeResult({ partnumber: 'abc', ncm: null, description: 'Resistor de filme' }), { ok: false, reason: 'result has no valid 8-digit NCM code', partnumber: 'ABC' }, 'a contract result without NCM: refused as before, naming its part number')
  t.same(normalizeResult({ partnumber: 'abc', ncm: '123' }), { ok: false, reason: 'result has no valid 8-digit NCM code', partnumber: 'ABC' })
  t.same(normalizeResult({ partnumber: 'abc', ncm: '85423190', nve: 'X'.repeat(21) }), { ok: false, reason: 'result field nve is not a string of acceptable length', partnumber: 'ABC' })
  t.equal(resultPartnumber(normalizeResult({ partnumber: 'abc', ncm: '85423190' })), 'ABC', 'and of a usable one')
})

test('no NCM in the text: refused, never guessed', async (t) => {
  const noJson = { ok: false, reason: "the AI server's answer has no JSON object to read an NCM code from", partnumber: null }
  t.same(normalizeResult(`${HEADER}I could not find specifications for LM358N. The closest NCM might be 8542.33.90.`), noJson, 'a code in prose is not taken')
  t.same(normalizeResult('NCM 8541.21.20'), noJson, 'a bare string')
  t.same(normalizeResult({ ...NULL_RESULT, description: `${HEADER}Web search failed: no results.` }), noJson, "a done whose text is the agent's failure")
  t.same(normalizeResult({ ...NULL_RESULT, description: `${HEADER}{"part_number": "LM358N", "classification": [{"ncm": "code_or_empty", "ex": "code_or_empty", "confidence": "score_or_empty"}]}` }),
    { ok: false, reason: `the AI server's answer holds no NCM code: "code_or_empty" is not an 8-digit NCM code`, partnumber: 'LM358N' }, 'the schema copied with its placeholders')
  t.same(normalizeResult(`${HEADER}{'part_number': 'LM358N', 'classification': [{'ncm': float('nan')}]}`), noJson, 'a Python expression is not evaluated')
})

test('contract results are read as before', async (t) => {
  const result = { partnumber: 'bc847blt1g', ncm: '8541.21.20', description: 'Transistor NPN', exception: 'Ex 01', nve: null, fabricante: 'onsemi', endereco: null, pais: 'US', confidence_score: 0.95 }
  const fields = { partnumber: 'BC847BLT1G', ncm: '85412120', ex: '01', nve: null, description: 'Transistor NPN', manufacturer: { name: 'onsemi', address: null, country: 'US' }, confidence: 0.95 }
  t.same(normalizeResult(result), { ok: true, fields })
  t.same(normalizeResult(JSON.stringify(result)), { ok: true, fields }, 'as a JSON string')
  t.same(normalizeResult({ ...result, description: fakeAgentText('OTHER') }), { ok: true, fields: { ...fields, description: fakeAgentText('OTHER') } },
    'a result with an NCM of its own: its description is stored as it is, not read as an answer')
  t.same(normalizeResult([1, 2]), { ok: false, reason: 'result is not an object', partnumber: null })
  t.same(normalizeResult('[1, 2]'), { ok: false, reason: 'result is not an object', partnumber: null })
})

test('stored text: a very long description is cut, NUL removed, no nve or supplier invented', async (t) => {
  const fields = stored(normalizeResult(`${HEADER}${JSON.stringify({ part_number: 'P1', supplier: 'Mouser', description: `a\u0000b ${'x'.repeat(20_000)}`, classification: [{ ncm: '85423190' }] })}`))
  t.equal(fields.description!.length, 10_000)
  t.ok(fields.description!.startsWith('ab x'), 'NUL removed')
  t.ok(fields.description!.endsWith('…'))
  t.equal(fields.manufacturer, null, 'the supplier is not the manufacturer')
  t.equal(fields.nve, null)
})

test('Python literals are rewritten as JSON, not evaluated', async (t) => {
  t.equal(pythonLiteralAsJson(`{'a': 'it\\'s', "b": None, 'c': [True, False, 1.5e3,], 'd': '\\xe7\\u00e3o\\n'}`), `{"a": "it's", "b": null, "c": [true, false, 1500 ], "d": "ção\\n"}`)
  t.equal(pythonLiteralAsJson(`{'a': __import__('os')}`), null)
  t.equal(pythonLiteralAsJson(`{'a': constructor}`), null)
  t.equal(pythonLiteralAsJson(`{'a': 'never closed}`), null)
})

test('found where it starts, whatever is around it', async (t) => {
  t.same(findAgentAnswer(`{not json} {"part_number": "P1"} then {"part_number": "P2", "classification": []}`), { part_number: 'P2', classification: [] }, 'an answer with a classification wins over one only naming a part number')
  t.same(findAgentAnswer(`{"part_number": "P1"} and nothing else`), { part_number: 'P1' }, 'else the one naming a part number')
  t.same(findAgentAnswer(`{"answer": {"part_number": "P1", "classification": [{"ncm": "85423190"}]}}`), { part_number: 'P1', classification: [{ ncm: '85423190' }] }, 'inside a wrapper')
  t.same(findAgentAnswer(`It's {broken 'quote} {"part_number": "P1", "classification": []}`), { part_number: 'P1', classification: [] }, 'after an unbalanced quote in prose')
  t.equal(findAgentAnswer('{"a": 1} {"b": [2]}'), null, 'objects that are no answer')
})

test('the work is bounded: huge or hostile text', async (t) => {
  const answer = JSON.stringify({ part_number: 'P1', classification: [{ ncm: '85423190' }] })
  t.equal(readAgentText(`${HEADER}${' '.repeat(MAX_ANSWER_SCAN)}${answer}`).ok, false, 'an answer starting after the first 100,000 characters is not looked for')
  t.equal(readAgentText(`${HEADER}${' '.repeat(MAX_ANSWER_SCAN - 1_000)}${answer}`).ok, true, 'one within them is found')
  const hostile = [
    '{'.repeat(1_000_000),
    `x${'{"a":'.repeat(20_000)}bad${'}'.repeat(20_000)}`,
    `x${"{'a':".repeat(20_000)}nan${'}'.repeat(20_000)}`,
    `x${"{'".repeat(500_000)}`,
    `x${'{"a":[1,],'.repeat(100_000)}`,
    `x{"a":"${'y'.repeat(1_000_000)}"}`,
  ]
  for (const text of hostile) {
    const started = performance.now()
    const outcome = normalizeResult(text)
    const ms = performance.now() - started
    t.equal(outcome.ok, false, `${text.slice(0, 12)}…: refused`)
    t.ok(ms < 1_000, `${text.slice(0, 12)}…: in ${ms.toFixed(0)} ms`)
  }
})
