// Python: a virtual environment (.venv) built from requirements.txt and/or the project itself,
// pytest for the tests. How the service starts is a guess the person must check.
import { type RepoFiles, type Stack, slug } from './types.js';

const MANIFESTS = ['pyproject.toml', 'requirements.txt', 'setup.py', 'setup.cfg', 'Pipfile'];
const PY = '.venv/bin/python';

/** A key of one [section] of a TOML file, read with a regular expression (no TOML parser here). */
function tomlValue(text: string, section: string, key: string): string | undefined {
  const start = text.search(new RegExp(`^\\[${section.replace(/\./g, '\\.')}\\]\\s*$`, 'm'));
  if (start < 0) return undefined;
  const body = text.slice(start).split(/\n(?=\[)/)[0]!;
  return new RegExp(`^${key}\\s*=\\s*["']([^"']+)["']`, 'm').exec(body)?.[1];
}

/** The first console script of [project.scripts]: the installed command that starts it. */
function firstScript(text: string): string | undefined {
  const start = text.search(/^\[project\.scripts\]\s*$/m);
  if (start < 0) return undefined;
  return /^\s*([A-Za-z0-9_.-]+)\s*=/m.exec(text.slice(start).split('\n').slice(1).join('\n').split(/\n(?=\[)/)[0]!)?.[1];
}

/**
 * Where pytest comes from: requirements.txt (installed by the build), another requirements
 * file (installed by the test job), or an optional-dependencies group of pyproject.toml
 * (installed with the project: `.[test]`).
 */
function wherePytest(repo: RepoFiles, pyproject: string): { inRequirements?: boolean; requirements?: string; extra?: string } {
  const mentions = (f: string) => /^\s*pytest\b/im.test(repo.read(f) ?? '');
  if (mentions('requirements.txt')) return { inRequirements: true };
  const other = repo.list('.').find((f) => /^requirements.+\.txt$/.test(f) && mentions(f));
  if (other) return { requirements: other };
  const start = pyproject.search(/^\[project\.optional-dependencies\]\s*$/m);
  if (start < 0) return {};
  const body = pyproject.slice(start).split('\n').slice(1).join('\n').split(/\n(?=\[[^\]"'])/)[0]!;
  return { extra: /^([A-Za-z0-9_.-]+)\s*=\s*\[[^\]]*["']pytest\b/m.exec(body)?.[1] };
}

function startCommand(repo: RepoFiles, pyproject: string, module: string): { command: string; comment: string[] } {
  const check = 'Check this: it must start your service listening on $PORT.';
  if (repo.has('manage.py')) return { command: `${PY} manage.py runserver 127.0.0.1:$PORT --noreload`, comment: ["Django's development server: put your WSGI/ASGI server here (gunicorn, uvicorn).", check] };
  const script = firstScript(pyproject);
  if (script) return { command: `.venv/bin/${script}`, comment: ['The first script of [project.scripts].', check] };
  for (const dir of ['', 'src/']) {
    if (repo.has(`${dir}${module}/__main__.py`)) return { command: `${PY} -m ${module}`, comment: [`${dir}${module}/__main__.py.`, check] };
  }
  const file = ['app.py', 'main.py', 'server.py', 'wsgi.py'].find((f) => repo.has(f));
  if (file) return { command: `${PY} ${file}`, comment: [`${file} looks like the entry point.`, check] };
  return { command: `${PY} -m ${module}`, comment: ['Found no entry point: put the command that starts your service here.', check] };
}

export const python: Stack = {
  name: 'python',
  evidence: (repo) => MANIFESTS.filter((f) => repo.has(f)),
  plan(repo) {
    const pyproject = repo.read('pyproject.toml') ?? '';
    const name = tomlValue(pyproject, 'project', 'name') ?? tomlValue(pyproject, 'tool.poetry', 'name') ?? /name\s*=\s*["']([^"']+)/.exec(repo.read('setup.py') ?? '')?.[1] ?? repo.dirName;
    const module = name.toLowerCase().replace(/[^a-z0-9]+/g, '_');
    const notes: string[] = [];
    const installable = repo.has('setup.py') || /^\[build-system\]/m.test(pyproject);
    const pytest = wherePytest(repo, pyproject);
    // --copies: the interpreter as a file, not a symbolic link, so the artifact carries it.
    const script = ['python3 -m venv --copies .venv'];
    if (repo.has('requirements.txt')) script.push(`${PY} -m pip install -r requirements.txt`);
    // Quoted: `.[test]` is a glob to the shell.
    if (installable) script.push(`${PY} -m pip install ${pytest.extra ? `'.[${pytest.extra}]'` : '.'}`);
    if (script.length === 1) notes.push('Found no requirements.txt and nothing installable: add the install lines of your dependencies to the build job.');

    const test = [`${PY} -m pytest --junitxml=junit.xml`];
    if (pytest.requirements) test.unshift(`${PY} -m pip install -r ${pytest.requirements}`);
    else if (!pytest.extra && !pytest.inRequirements) {
      test.unshift(`${PY} -m pip install pytest`);
      notes.push('pytest is not among your dependencies: the test job installs it (add it to your dev requirements instead).');
    }
    const start = startCommand(repo, pyproject, module);
    notes.push(`Check the start command of the environments (\`${start.command}\`): it must serve on $PORT.`);
    return {
      name: slug(name),
      title: 'Python',
      build: {
        comment: ['A virtual environment with the dependencies; the releases run from it (.venv is kept as an artifact).'],
        script,
        artifacts: ['.venv/'],
      },
      test: { comment: ['pytest, with a JUnit report (failed tests show in `ferry show` and the job).'], script: test, junit: 'junit.xml' },
      start,
      notes,
    };
  },
};
