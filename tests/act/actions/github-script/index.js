// Runs a github-script step's script as the real action does (an async function of require, github,
// context and core), against a stand-in of GitHub's issue-comment API kept in a JSON file.
const fs = require("fs");
const path = require("path");

const store = path.join(process.env.ACT_RECORD_DIR, "github-api.json");
const state = fs.existsSync(store) ? JSON.parse(fs.readFileSync(store, "utf8")) : { comments: [], calls: [] };
const save = () => fs.writeFileSync(store, JSON.stringify(state, null, 2));

const [owner, repo] = process.env.GITHUB_REPOSITORY.split("/");
const payload = JSON.parse(fs.readFileSync(process.env.GITHUB_EVENT_PATH, "utf8"));
const number = (payload.pull_request || payload.issue || {}).number;
const context = {
  repo: { owner, repo },
  issue: { owner, repo, number },
  payload,
  eventName: process.env.GITHUB_EVENT_NAME,
  sha: process.env.GITHUB_SHA,
  ref: process.env.GITHUB_REF,
};

function call(name, params) {
  state.calls.push({ name, params });
  if (params.owner !== owner || params.repo !== repo) {
    throw new Error(`${name}: ${params.owner}/${params.repo} is not ${owner}/${repo}`);
  }
}

const issues = {
  async listComments(params) {
    call("issues.listComments", params);
    return { data: state.comments.filter((c) => c.issue_number === params.issue_number) };
  },
  async createComment(params) {
    call("issues.createComment", params);
    const comment = {
      id: state.comments.length + 1,
      issue_number: params.issue_number,
      body: params.body,
      user: { login: "github-actions[bot]", type: "Bot" },
    };
    state.comments.push(comment);
    return { data: comment };
  },
  async updateComment(params) {
    call("issues.updateComment", params);
    const comment = state.comments.find((c) => c.id === params.comment_id);
    if (!comment) throw new Error(`issues.updateComment: comment ${params.comment_id}: Not Found`);
    comment.body = params.body;
    return { data: comment };
  },
};
const github = {
  rest: { issues },
  paginate: async (method, params) => (await method(params)).data,
};
const core = {
  info: (message) => console.log(message),
  warning: (message) => console.log(`::warning::${message}`),
  setFailed: (message) => {
    console.log(`::error::${message}`);
    process.exitCode = 1;
  },
  setOutput: (name, value) => fs.appendFileSync(process.env.GITHUB_OUTPUT, `${name}=${value}\n`),
};

const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction("require", "github", "context", "core", process.env.INPUT_SCRIPT)(require, github, context, core)
  .catch((err) => {
    console.log(`::error::${err.stack || err}`);
    process.exitCode = 1;
  })
  .finally(save);
