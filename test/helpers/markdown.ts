// Fenced code blocks of a Markdown document, for tests that run a document's
// examples as written (README.md, docs/ recipes).

export interface Block {
  lang: string;
  code: string;
  line: number;
  /** why it is not run, when marked so */
  skip?: string;
}

/** The fenced code blocks of a Markdown text (indented ones too, as in lists). */
export function codeBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && lines[j]!.trim() !== '```') body.push(lines[j++]!.slice(indent));
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const skip = k >= 0 ? /<!-- not run by test\/docs\/readme\.test\.ts: (.+?) -->/.exec(lines[k]!)?.[1] : undefined;
    blocks.push({ lang: open[2]!, code: body.join('\n'), line: i + 1, ...(skip ? { skip } : {}) });
    i = j;
  }
  return blocks;
}
