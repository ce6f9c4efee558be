/** examples/rx-usage.ts runs and prints what the RxJS surface documents. */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const example = fileURLToPath(new URL('../../examples/rx-usage.ts', import.meta.url));

describe('examples: rx-usage', function () {
  this.timeout(60_000);
  it('commits through txnSink and reads back with the operators', async () => {
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', example], { timeout: 50_000 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out))),
    );
    const lines = stdout.trim().split('\n');
    expect(lines).to.deep.equal([
      'acks 2 3 4',
      'fruit updates [["apple",null,2,3],["apple",null,3,-1],["pear",null,3,2]]',
      'fruit now [["apple",null,2],["pear",null,2]]',
      'both {"kind":"updates","updates":[["leek",null,4,3],["apple",null,4,2],["pear",null,4,2]]}',
      // The logical frontier: 4 was the last transfer, 5 the sink's final tidy.
      'both {"kind":"progress","upper":6}',
      // The physical one lags: veg was last written at 4.
      'veg physical progress {"kind":"progress","upper":5}',
    ]);
  });
});
