/** A provider id as it appears in construct ids, output and alarm names: `standard-webhooks` → `StandardWebhooks`. */
export function pascal(id: string): string {
  return id
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}
