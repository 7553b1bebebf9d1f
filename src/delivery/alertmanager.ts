// Alerts as an analysis signal: Alertmanager posts its webhook (payload version "4") to Ferry,
// and a firing alert that names an environment fails that environment's release in progress.
// An alert names an environment by its labels: `ferry_environment`, else `environment` or `env`;
// when it also has `ferry_project`, that must be the environment's project (id or name).
//
// Payload (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config):
//   { version: "4", groupKey, truncatedAlerts, status, receiver, groupLabels, commonLabels,
//     commonAnnotations, externalURL, alerts: [{ status, labels, annotations, startsAt, endsAt,
//     generatorURL, fingerprint }] }

export interface Alert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: Date;
  /** null while firing with no end known (Alertmanager sends year 1). */
  endsAt: Date | null;
  fingerprint: string;
  generatorURL: string | null;
}

export interface AlertmanagerPayload {
  status: 'firing' | 'resolved';
  receiver: string;
  groupKey: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  externalURL: string | null;
  /** Alerts Alertmanager left out (max_alerts). */
  truncatedAlerts: number;
  alerts: Alert[];
}

export class AlertmanagerPayloadError extends Error {
  constructor(message: string) {
    super(`not an Alertmanager webhook: ${message}`);
    this.name = 'AlertmanagerPayloadError';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringMap(v: unknown, where: string, optional = false): Record<string, string> {
  if (v === undefined || v === null) {
    if (optional) return {};
    throw new AlertmanagerPayloadError(`${where} is missing`);
  }
  if (!isObject(v)) throw new AlertmanagerPayloadError(`${where} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new AlertmanagerPayloadError(`${where}.${k} must be a string`);
    out[k] = x;
  }
  return out;
}

function status(v: unknown, where: string): 'firing' | 'resolved' {
  if (v !== 'firing' && v !== 'resolved') throw new AlertmanagerPayloadError(`${where} must be "firing" or "resolved"`);
  return v;
}

function time(v: unknown, where: string, optional: boolean): Date | null {
  if ((v === undefined || v === null || v === '') && optional) return null;
  if (typeof v !== 'string') throw new AlertmanagerPayloadError(`${where} must be an RFC 3339 time`);
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new AlertmanagerPayloadError(`${where} \`${v}\` is not an RFC 3339 time`);
  // Go's zero time: no end known.
  if (optional && d.getUTCFullYear() <= 1) return null;
  return d;
}

function optString(v: unknown, where: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new AlertmanagerPayloadError(`${where} must be a string`);
  return v;
}

/** Validates and reads a webhook body; throws AlertmanagerPayloadError naming the first problem. */
export function parseAlertmanagerWebhook(body: unknown): AlertmanagerPayload {
  if (!isObject(body)) throw new AlertmanagerPayloadError('the body must be a JSON object');
  if (body.version !== '4') throw new AlertmanagerPayloadError(`version must be "4", got ${JSON.stringify(body.version)}`);
  if (!Array.isArray(body.alerts)) throw new AlertmanagerPayloadError('alerts must be an array');
  const truncated = body.truncatedAlerts ?? 0;
  if (typeof truncated !== 'number' || !Number.isInteger(truncated) || truncated < 0) throw new AlertmanagerPayloadError('truncatedAlerts must be a whole number');
  const alerts = body.alerts.map((a: unknown, i): Alert => {
    const where = `alerts[${i}]`;
    if (!isObject(a)) throw new AlertmanagerPayloadError(`${where} must be an object`);
    if (typeof a.fingerprint !== 'string' || a.fingerprint === '') throw new AlertmanagerPayloadError(`${where}.fingerprint must be a string`);
    return {
      status: status(a.status, `${where}.status`),
      labels: stringMap(a.labels, `${where}.labels`),
      annotations: stringMap(a.annotations, `${where}.annotations`, true),
      startsAt: time(a.startsAt, `${where}.startsAt`, false)!,
      endsAt: time(a.endsAt, `${where}.endsAt`, true),
      fingerprint: a.fingerprint,
      generatorURL: optString(a.generatorURL, `${where}.generatorURL`) || null,
    };
  });
  return {
    status: status(body.status, 'status'),
    receiver: optString(body.receiver, 'receiver') ?? '',
    groupKey: optString(body.groupKey, 'groupKey') ?? '',
    groupLabels: stringMap(body.groupLabels, 'groupLabels', true),
    commonLabels: stringMap(body.commonLabels, 'commonLabels', true),
    externalURL: optString(body.externalURL, 'externalURL'),
    truncatedAlerts: truncated,
    alerts,
  };
}

export interface EnvironmentRef {
  name: string;
  /** The environment's project: its id, its name, or both; matched against `ferry_project`. */
  project?: string | number | readonly (string | number)[];
}

/** Whether an alert's labels name this environment (whatever its status). */
export function alertNamesEnvironment(labels: Record<string, string>, env: EnvironmentRef): boolean {
  const named = labels.ferry_environment !== undefined ? labels.ferry_environment === env.name : labels.environment === env.name || labels.env === env.name;
  if (!named) return false;
  const project = labels.ferry_project;
  if (project === undefined || env.project === undefined) return true;
  const ours = Array.isArray(env.project) ? env.project : [env.project as string | number];
  return ours.some((p) => String(p) === project);
}

/** The firing alerts of a payload that name this environment. */
export function alertsForEnvironment(payload: AlertmanagerPayload, env: EnvironmentRef): Alert[] {
  return payload.alerts.filter((a) => a.status === 'firing' && alertNamesEnvironment(a.labels, env));
}
