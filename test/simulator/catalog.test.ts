import { test } from 'tap'
import { classify, failsInBatch } from '../../src/simulator/catalog.js'

test('generic answers follow the part number family', async (t) => {
  const expected: Array<[string, string, string]> = [
    ['GRM188R71H104KA93D', '85322410', 'Murata Manufacturing'],
    ['CL21B104KBCNNNC', '85322410', 'Samsung Electro-Mechanics'],
    ['C0G0805-100P', '85322410', 'KEMET'],
    ['BC557B', '85412120', 'Nexperia'],
    ['MMBT3904', '85412120', 'Nexperia'],
    ['2N2222A', '85412120', 'ONSEMI'],
    ['1N4148W', '85411032', 'Vishay Intertechnology'],
    ['BAT54S', '85411022', 'Nexperia'],
    ['bav99', '85411022', 'Nexperia'],
    ['ATMEGA328P-PU', '85423190', 'Microchip Technology'],
    ['STM32F103C8T6', '85423190', 'STMicroelectronics'],
    ['NE555P', '85423999', 'Texas Instruments'],
    ['TL072CP', '85423999', 'Texas Instruments'],
    ['RC0603FR-0710KL', '85332120', 'Yageo'],
    ['CRCW060310K0FKEA', '85332120', 'Vishay Intertechnology'],
    ['ERJ-3EKF1002V', '85332120', 'Panasonic Industry'],
    ['XYZ-UNKNOWN-1', '85423999', 'Texas Instruments'],
  ]
  for (const [partnumber, ncm, fabricante] of expected) {
    const result = classify(partnumber)
    t.match(result, { partnumber, ncm, fabricante, exception: '00', nve: null }, partnumber)
    t.match(result.ncm, /^\d{8}$/)
    t.type(result.description, 'string')
  }
})

test('confidence is stable per part number and between 0.60 and 0.99', async (t) => {
  const partnumbers = ['A1', 'B2', 'GRM1', 'NE555P', 'XYZ', 'TL431', 'BC817', 'Z']
  const scores = partnumbers.map((pn) => classify(pn).confidence_score!)
  for (const score of scores) {
    t.ok(score >= 0.6 && score <= 0.99, `${score} in range`)
    t.equal(Math.round(score * 100) / 100, score, 'two decimals')
  }
  t.same(partnumbers.map((pn) => classify(pn).confidence_score), scores, 'same answer every time')
  t.ok(new Set(scores).size > 1, 'but not the same for every part number')
})

test('known part numbers; LM358N fails only inside batches; results are copies', async (t) => {
  t.match(classify('LM358N'), { ncm: '85423990', fabricante: 'Texas Instruments' })
  t.equal(failsInBatch('LM358N'), true)
  t.equal(failsInBatch('BC847BLT1G'), false)
  const mutated = classify('BC847BLT1G')
  mutated.ncm = 'changed'
  t.equal(classify('BC847BLT1G').ncm, '85412120')
})
