// Each language's words in one place, so adding a language is one line.
const LANGUAGES = {
  en: { hello: 'Hello', world: 'world' },
  de: { hello: 'Hallo', world: 'Welt' },
  fr: { hello: 'Bonjour', world: 'le monde' },
  es: { hello: 'Hola', world: 'mundo' },
};

export function greeting(name, locale = 'en') {
  // A language we do not speak gets English, as before v2.
  const words = LANGUAGES[locale] ?? LANGUAGES.en;
  return `${words.hello}, ${name && name.trim() ? name.trim() : words.world}!`;
}
