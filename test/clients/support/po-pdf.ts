import PDFDocument from 'pdfkit'
import { randomBytes } from 'node:crypto'

export interface OrderLine { partnumber: string; description: string; quantity: number }

/**
 * A one-page purchase order ("Pedido de compra") with a table whose columns are Item, Part Number,
 * Descrição and Qtd. With `sizeBytes`, the file is padded to exactly that size by an attached file of
 * random bytes (valid PDF, same text), which is how the upload-limit tests get a 20 MB order.
 */
export async function purchaseOrderPdf(lines: OrderLine[], options: { sizeBytes?: number } = {}): Promise<Buffer> {
  if (options.sizeBytes === undefined) return render(lines)
  const padding = randomBytes(options.sizeBytes)
  // Uncompressed, the size grows byte for byte with the attachment (give or take the digits of its
  // /Length): render, measure, correct, and again until exact.
  let attachment = options.sizeBytes - (await render(lines, Buffer.alloc(0))).length
  for (let attempt = 0; attempt < 5; attempt++) {
    const pdf = await render(lines, padding.subarray(0, Math.max(0, attachment)))
    if (pdf.length === options.sizeBytes) return pdf
    attachment += options.sizeBytes - pdf.length
  }
  throw new Error(`could not make a PDF of exactly ${options.sizeBytes} bytes`)
}

function render(lines: OrderLine[], attachment?: Buffer): Promise<Buffer> {
  const doc = new PDFDocument({ size: 'A4', margin: 40, compress: attachment === undefined, info: { Title: 'Pedido de compra' } })
  const chunks: Buffer[] = []
  doc.on('data', (c: Buffer) => chunks.push(c))
  const done = new Promise<Buffer>((resolve) => doc.on('end', () => resolve(Buffer.concat(chunks))))

  doc.font('Helvetica-Bold').fontSize(14).text('Pedido de compra 4500012345', 40, 40)
  doc.font('Helvetica').fontSize(9).text('Fornecedor: Mouser Electronics    Data: 03/03/2025', 40, 62)
  const columns = [40, 80, 240, 500]
  let y = 100
  doc.font('Helvetica-Bold')
  ;['Item', 'Part Number', 'Descrição', 'Qtd'].forEach((h, i) => doc.text(h, columns[i]!, y, { lineBreak: false }))
  doc.font('Helvetica')
  lines.forEach((line, index) => {
    y += 16
    const cells = [String((index + 1) * 10), line.partnumber, line.description, String(line.quantity)]
    cells.forEach((text, i) => doc.text(text, columns[i]!, y, { lineBreak: false }))
  })
  if (attachment) doc.file(attachment, { name: 'padding.bin', type: 'application/octet-stream', hidden: true })
  doc.end()
  return done
}

