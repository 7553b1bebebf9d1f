// Each language's words in one place, so adding a language is one line.
const LANGUAGES = {
  en: { hello: 'Hello', world: 'world' },
  de: { hello: 'Hallo', world: 'Welt' },
  fr: { hello: 'Bonjour', world: 'le monde' },
  es: { hello: 'Hola', world: 'mundo' },
};

export function greeting(name, locale = 'en') {
  const words = LANGUAGES[locale];
  return `${words.hello}, ${name && name.trim() ? name.trim() : words.world}!`;
}
