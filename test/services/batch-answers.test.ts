import { test } from 'tap'
import { candidateNames, itemNamedInText, matchAnswer, type AnswerableItem, type BatchAnswer } from '../../src/services/jobs/batch-answers.js'
import { normalizeResult } from '../../src/services/ai/classification-result.js'

// Which item an answer of the AI server is for: the texts are those the real server and the
// contract send (src/simulator/real-server-jobs.ts, src/simulator/contract.ts).

const items = (...partnumbers: string[]): AnswerableItem[] =>
  partnumbers.map((partnumber, position) => ({ partnumber, position, status: 'PENDING', chunk: 0 }))

const result = (partnumber: string | null, text: string | null = null): BatchAnswer =>
  ({ kind: 'result', result: normalizeResult({ partnumber, ncm: '85423190' }), named: partnumber, text })
const error = (text: string): BatchAnswer => ({ kind: 'error', error: text, named: null, text })

test('an error names its item exactly, never a part number containing the one it names', async (t) => {
  const batch = items('RFAIL10K', 'FAIL10K')
  t.equal(matchAnswer(error('Erro ao processar partnumberFAIL10K'), batch, 0)?.item.partnumber, 'FAIL10K')
  t.equal(matchAnswer(error('Erro ao processar partnumberRFAIL10K'), batch, 0)?.item.partnumber, 'RFAIL10K')
  t.equal(matchAnswer(error('Erro ao processar partnumberAGENTERR-10K'), items('RAGENTERR-10K', 'AGENTERR-10K'), 0)?.item.partnumber, 'AGENTERR-10K',
    '"partnumbeR" + the part number is not the other item')
})

test('a text names the longest part number that fits, spaces and punctuation inside allowed', async (t) => {
  const batch = items('LM', 'LM 358N', 'BC847B,215', 'B2B-XH-A(LF)(SN)')
  t.equal(itemNamedInText('Classificação encontrada para o partnumber LM 358N', batch)?.partnumber, 'LM 358N')
  t.equal(itemNamedInText('[1] Processando partnumber LM com Nexa IA', batch)?.partnumber, 'LM')
  t.equal(itemNamedInText('Classificacao encontrada para o partnumber BC847B,215', batch)?.partnumber, 'BC847B,215')
  t.equal(itemNamedInText('Erro ao processar partnumberB2B-XH-A(LF)(SN)', batch)?.partnumber, 'B2B-XH-A(LF)(SN)')
  t.equal(itemNamedInText('Classificacao encontrada para o partnumber LM358N', batch), undefined, 'LM358N is not LM')
})

test('by the result\'s part number, then the text\'s, then the order, and never the order when the answer names another part', async (t) => {
  const batch = items('M-1', 'M-2')
  t.match(matchAnswer(result('m-2'), batch, 0), { item: { partnumber: 'M-2' }, by: 'partnumber' }, 'case does not matter')
  t.match(matchAnswer(result('M1'), batch, 0), { item: { partnumber: 'M-1' }, by: 'partnumber' }, 'nor separators')
  t.match(matchAnswer(result('M-1-ALT', 'Classificacao encontrada para o partnumber M-2'), batch, 0), { item: { partnumber: 'M-2' }, by: 'text' })
  t.match(matchAnswer(result(null), batch, 0), { item: { partnumber: 'M-1' }, by: 'order' }, 'naming nothing: the next item waiting')
  t.equal(matchAnswer(result('OTHER-JOB-PN'), batch, 0), undefined, 'another job\'s answer is for no item here')
  t.equal(matchAnswer(error('Erro ao processar partnumberX-9'), batch, 0), undefined, 'an error naming a part number not in the batch')
  t.match(matchAnswer(error('AI server reported a failure without a reason'), batch, 0), { item: { partnumber: 'M-1' }, by: 'order' })
  const answered = batch.map((i) => ({ ...i, status: 'DONE' as const }))
  t.equal(matchAnswer(result(null), answered, 0), undefined, 'no item waiting: nothing to attribute by order')
})

test('the names an answer may be for, to read those items by key', async (t) => {
  t.same(candidateNames(result('lm358n')), ['LM358N'])
  t.same(candidateNames(error('Erro ao processar partnumberBC847 BLT1G')), ['BC847', 'BC847 BLT1G'])
  t.same(candidateNames(result(null, '[1] Processando partnumber LM 358N com Nexa IA')), ['LM', 'LM 358N', 'LM 358N COM', 'LM 358N COM NEXA', 'LM 358N COM NEXA IA'])
  t.same(candidateNames(result(null, 'x'.repeat(500))), [], 'a text naming no part number names none')
  t.ok(candidateNames(error(`Erro ao processar partnumber${'A '.repeat(300)}`)).every((n) => n.length <= 100), 'bounded by the longest part number')
})
