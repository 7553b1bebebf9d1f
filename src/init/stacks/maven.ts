// Java with Maven: `package` builds the jar, `test` runs Surefire, whose XML reports are JUnit's.
import { type Stack, slug } from './types.js';

export const maven: Stack = {
  name: 'maven',
  evidence: (repo) => (repo.has('pom.xml') ? ['pom.xml', 'mvnw'].filter((f) => repo.has(f)) : []),
  plan(repo) {
    const pom = repo.read('pom.xml') ?? '';
    // The project's own artifactId, not its parent's.
    const own = pom.replace(/<parent>[\s\S]*?<\/parent>/, '').replace(/<dependencies>[\s\S]*<\/dependencies>/, '');
    const name = /<artifactId>\s*([^<\s]+)\s*<\/artifactId>/.exec(own)?.[1] ?? repo.dirName;
    const mvn = repo.has('mvnw') ? './mvnw -B' : 'mvn -B';
    // Spring Boot listens on 8080 unless told; the edge gives each instance its own $PORT.
    const spring = /spring-boot/.test(pom);
    return {
      name: slug(name),
      title: `Java (Maven${spring ? ', Spring Boot' : ''})`,
      build: {
        comment: ['Builds the jar (the tests run in their own job).'],
        script: [`${mvn} package -DskipTests`],
        artifacts: ['target/*.jar'],
      },
      test: {
        comment: ['The tests; Surefire writes JUnit reports (failed tests show in `ferry show` and the job).'],
        script: [`${mvn} test`],
        junit: 'target/surefire-reports/*.xml',
      },
      start: {
        command: `java -jar target/*.jar${spring ? ' --server.port=$PORT' : ''}`,
        comment: [spring ? 'The jar the build made, on the port the edge gives it.' : 'The jar the build made: it must listen on $PORT (name the jar if the build makes several).'],
      },
      notes: spring ? [] : ['Check the start command of the environments (`java -jar target/*.jar`): the service must listen on $PORT.'],
    };
  },
};
