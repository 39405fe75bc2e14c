// The policy engine's public face: documents in, a compiled set, decisions and explanations out.
export { parsePolicyDocument, validatePolicyDocument } from './document.js';
export { checkPolicySource } from './source-problems.js';
export type { SourceCheck, SourceProblem } from './source-problems.js';
export { explanationLines, ruleMark } from './explain-lines.js';
export type { ExplainedDecision, ExplainedRuleLine } from './explain-lines.js';
export { compilePolicies } from './compile.js';
export type { PolicySet } from './compile.js';
export { evaluate, explain } from './evaluate.js';
export { allowedSshLogins } from './logins.js';
export { SSH_CHANNELS, describedSshAction, isSshChannel, sshChannelLabel, sshExecChannel } from './ssh-channel.js';
export { compileWithSocketPolicies, socketAuthPolicy, socketNamespace } from './socket-auth.js';
export { outsideMessage, policyCoverage } from './coverage.js';
export { canonicalTarget } from './request-target.js';
export type { CanonicalTarget, TargetOptions, TargetRefusal } from './request-target.js';
export type { NamedSocket, PolicyCoverage } from './coverage.js';
export type { PolicySocket, SocketAuthSettings } from './socket-auth.js';
export { ruleLabel } from './rule.js';
export { decidingRule, denialDetail, observedRecord } from './decision-record.js';
export type { ObservedRecord } from './decision-record.js';
export { requestContext } from './context.js';
export type { ContextFacts } from './context.js';
export { EU_MEMBERS } from './countries.js';
export { parseDuration } from './syntax.js';
export type {
  Action,
  DatabaseWhat,
  Decision,
  DecisionReason,
  Effect,
  Explanation,
  HttpWhat,
  PolicyDocument,
  PolicyMode,
  PolicyRecordInput,
  Principal,
  RequestContext,
  Rule,
  RuleExplanation,
  RuleOutcome,
  RuleRef,
  SshChannel,
  SshWhat,
  TlsWhat,
  Weekday,
  WhatCondition,
  WhenCondition,
  WhereCondition,
  WhoCondition,
  WouldDeny,
} from './types.js';
export { SUGGEST_DEFAULTS, suggestPolicies, suggestionsYaml } from './suggest.js';
export type { ObservedFlow, SuggestSocket, Suggestion, SuggestOptions, SuggestedPolicy, UncoveredFlow } from './suggest.js';
