const WORDS = { en: 'Hello', de: 'Hallo', fr: 'Bonjour' };

export function greeting(name, locale = 'en') {
  const word = WORDS[locale] ?? WORDS.en;
  return `${word}, ${name && name.trim() ? name.trim() : 'world'}!`;
}
