// Public face of src/agent: the `postern agent` process, its YAML config and host facts.
export { Agent } from './agent.js';
export type { AgentIdentity, AgentOptions } from './agent.js';
export { agentConfigSchema, loadAgentConfig, parseAgentConfig } from './config.js';
export type { AgentConfig } from './config.js';
export { agentTokenPin, createAttestor } from './attestors.js';
export type { Attestor } from './attestors.js';
export { gatherHostFacts } from './facts.js';
export { agentRenewalDelay, remainingLife } from './renewal.js';
export { ServiceIdentities, agentServiceSchema, declarationOf, parseLabelsFile, serviceKey, workloadApiSchema } from './services.js';
export type { AgentService, ServiceIdentitiesOptions, ServiceSvid } from './services.js';
export { WorkloadApi, callerService, processMatches } from './workload-api.js';
export type { WorkloadApiOptions } from './workload-api.js';
